//! Physical optimizer rules the engine adds to the session (through the session state, so that
//! a Ballista scheduler can register them as well).
//!
//! - [`DynamicFiltersFirst`]: in every Parquet scan, evaluate the dynamic filters of hash joins
//!   (the knowledge-base codes, the candidate settlements of the build side) before the rule's
//!   own predicates, so that the other filter columns are decoded only for the rows that pass.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

/// Puts the dynamic-filter conjuncts of a Parquet scan's predicate first.
///
/// With `pushdown_filters`, the Parquet reader evaluates the conjuncts one after the other, each
/// on the rows the earlier ones kept, decoding each one's columns only for those rows. A rule's
/// own predicates (`cnt > 0`, not a refund line, not class 丙) keep nearly every fee line, while
/// the dynamic filter of a join with a knowledge-base sheet keeps a few percent: evaluated
/// first, it spares the decoding of the other filter columns for the rest (the session turns
/// `reorder_filters` off, so that this order is kept).
#[derive(Debug, Default)]
pub struct DynamicFiltersFirst;

fn is_dynamic(e: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    let _ = e.apply(|n| {
        if n.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn reorder_scan(plan: &Arc<dyn ExecutionPlan>) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let Some(exec) = plan.downcast_ref::<DataSourceExec>() else { return Ok(None) };
    let Some((config, source)) = exec.downcast_to_file_source::<ParquetSource>() else { return Ok(None) };
    let Some(predicate) = source.filter() else { return Ok(None) };
    let parts = split_conjunction(&predicate);
    let first_static = parts.iter().position(|p| !is_dynamic(p));
    let last_dynamic = parts.iter().rposition(|p| is_dynamic(p));
    match (first_static, last_dynamic) {
        (Some(s), Some(d)) if s < d => {}
        _ => return Ok(None),
    }
    let (dynamic, fixed): (Vec<_>, Vec<_>) = parts.into_iter().cloned().partition(is_dynamic);
    let reordered = conjunction(dynamic.into_iter().chain(fixed));
    let new_source = Arc::new(source.with_predicate(reordered));
    let config: FileScanConfig = FileScanConfigBuilder::from(config.clone()).with_source(new_source).build();
    Ok(Some(DataSourceExec::from_data_source(config)))
}

impl PhysicalOptimizerRule for DynamicFiltersFirst {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if !config.execution.parquet.pushdown_filters {
            return Ok(plan);
        }
        plan.transform_up(|p| {
            Ok(match reorder_scan(&p)? {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(p),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "medaudit_dynamic_filters_first"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
