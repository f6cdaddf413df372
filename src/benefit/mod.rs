//! TODO(owner): see issue
