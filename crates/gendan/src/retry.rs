//! Calling gendan from outside as a well-behaved party does: a gRPC call
//! that fails transiently (the service restarting or overloaded, a row
//! lost to a concurrent writer) is tried again after an exponential,
//! jittered wait, so parties retrying together spread out instead of
//! arriving in step. The simulators keep trying for a quarter of an hour
//! (a real partner's system does); the CLI for seconds (a person is
//! waiting). Every call retried
//! here is safe to repeat: gendan's writes are idempotent by request id,
//! idempotency key or decision id.

use std::future::Future;
use std::time::Duration;

use tonic::Code;

/// Codes that say "not now": the same request will do later. `Unknown` and
/// `Cancelled` are what a call cut off mid-way comes back as ("transport
/// error", "connection closed": the server died with the request in
/// flight); every call retried here is idempotent, so whether it was done
/// or not, sending it again is right.
pub const TRANSIENT: [Code; 6] = [
    Code::Unavailable,
    Code::ResourceExhausted,
    Code::DeadlineExceeded,
    Code::Aborted,
    Code::Unknown,
    Code::Cancelled,
];

/// Attempts a simulated partner makes (about a quarter of an hour in all,
/// as a supplier's or a bank's system keeps trying a service that is
/// overloaded or restarting).
pub const PARTNER_ATTEMPTS: u32 = 200;
/// Attempts the CLI makes (about twenty seconds in all).
pub const CLI_ATTEMPTS: u32 = 8;

/// Calls `call` until it succeeds, fails with a code that is neither
/// transient nor one of `also` (a caller's "not yet": the other service has
/// not caught up), or `attempts` retries are spent. Waits 50 ms, doubling
/// up to 5 s (or the server's retry hint when longer), each jittered to
/// between half and all of it.
pub async fn transient<T, F, Fut>(also: &[Code], attempts: u32, call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let worth_another = |status: &tonic::Status| {
        also.contains(&status.code()) || TRANSIENT.contains(&status.code())
    };
    // An overloaded server says how long to stay away.
    let pushback =
        |status: &tonic::Status| gendan_grpc::admission::retry_pushback(status).unwrap_or_default();
    let response = with_backoff(attempts, worth_another, pushback, call).await?;
    Ok(response.into_inner())
}

/// Calls `call` until it succeeds or `attempts` retries are spent, with the
/// same waits as [`transient`]: for calls whose every failure is worth
/// another try, such as a publish while the bus restarts (a repeat of the
/// same message is dropped by its id).
pub async fn persistently<T, E, F, Fut>(attempts: u32, call: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    with_backoff(attempts, |_| true, |_| Duration::ZERO, call).await
}

/// The one retry loop: `call` again while `worth_another` says so and
/// retries are left, waiting 50 ms doubling up to 5 s (or `at_least`, a
/// server's hint, when longer), jittered.
async fn with_backoff<T, E, F, Fut>(
    attempts: u32,
    worth_another: impl Fn(&E) -> bool,
    at_least: impl Fn(&E) -> Duration,
    mut call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut ceiling = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(err) if attempt < attempts && worth_another(&err) => {
                attempt += 1;
                tokio::time::sleep(jittered(ceiling.max(at_least(&err)))).await;
                ceiling = (ceiling * 2).min(Duration::from_secs(5));
            }
            Err(err) => return Err(err),
        }
    }
}

/// A wait between half of `ceiling` and all of it, varied per call.
fn jittered(ceiling: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = 0.5 + f64::from(nanos % 1_000) / 2_000.0;
    ceiling.mul_f64(fraction)
}

/// `client.method(request)` from the CLI, retried on transient failures;
/// the response's message, or the final status.
macro_rules! rpc {
    ($client:expr, $method:ident, $request:expr) => {{
        let request = $request;
        let client = $client.clone();
        $crate::retry::transient(&[], $crate::retry::CLI_ATTEMPTS, || {
            let mut client = client.clone();
            let request = request.clone();
            async move { client.$method(request).await }
        })
        .await
    }};
}
pub(crate) use rpc;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_and_others_are_not() {
        let calls = AtomicU32::new(0);
        let answered = transient(&[], 5, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    Err(tonic::Status::unavailable("restarting"))
                } else {
                    Ok(tonic::Response::new(n))
                }
            }
        })
        .await;
        assert_eq!(answered.unwrap(), 2);

        let calls = AtomicU32::new(0);
        let refused = transient(&[], 5, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<tonic::Response<()>, _>(tonic::Status::invalid_argument("bad")) }
        })
        .await;
        assert_eq!(refused.unwrap_err().code(), Code::InvalidArgument);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let gave_up = transient(&[], 3, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<tonic::Response<()>, _>(tonic::Status::unavailable("down")) }
        })
        .await;
        assert_eq!(gave_up.unwrap_err().code(), Code::Unavailable);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "the first call and three retries"
        );
    }
}
