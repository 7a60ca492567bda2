//! Session functions available to user SQL and to policies: `current_user()`
//! and `current_role()`, bound to the session's authenticated user and runtime
//! role when the session is created.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit,
};

/// A zero-argument function returning one fixed text for the whole session.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionValue {
    name: &'static str,
    value: String,
    signature: Signature,
}

impl ScalarUDFImpl for SessionValue {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// Always folded into a literal when a query is optimized: the value is
    /// the session's, and a plan sent to a worker must not need the
    /// session to be evaluated.
    fn simplify(&self, _args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Ok(ExprSimplifyResult::Simplified(lit(self.value.clone())))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            self.value.clone(),
        ))))
    }
}

fn session_value(name: &'static str, value: &str) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(SessionValue {
        name,
        value: value.to_string(),
        // Stable: constant within a query, so the planner may fold it.
        signature: Signature::nullary(Volatility::Stable),
    }))
}

/// `current_user()` and `current_role()` for a session of `user` under `role`.
pub fn session_functions(user: &str, role: &str) -> [Arc<ScalarUDF>; 2] {
    [
        session_value("current_user", user),
        session_value("current_role", role),
    ]
}
