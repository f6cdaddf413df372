//! Functions the engine registers in the session for the rules (through the session state,
//! so that they can be registered on Ballista executors as well).
//!
//! - `medaudit_hash64(a, b, ...)`: a 64-bit hash (UInt64) of its arguments taken together, of
//!   any types; equal argument tuples give equal hashes within a run. Heavy duplicate searches
//!   over the fee table group or sort by this one narrow key instead of five wide columns, then
//!   verify the few candidates exactly (a collision can only add a candidate, never lose one).

use std::sync::Arc;

use arrow::array::UInt64Array;
use arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `medaudit_hash64(...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Hash64 {
    signature: Signature,
}

impl Default for Hash64 {
    fn default() -> Self {
        Hash64 { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Hash64 {
    fn name(&self) -> &str {
        "medaudit_hash64"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut hashes = vec![0u64; n];
        create_hashes(&arrays, &RandomState::default(), &mut hashes)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(hashes))))
    }
}

/// Every function the engine adds to a session.
pub fn functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::from(Hash64::default())]
}
