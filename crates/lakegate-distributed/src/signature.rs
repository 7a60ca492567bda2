//! The fleet key and what a worker call's signature covers.
//!
//! ```text
//! x-lakegate-fleet-signature: v1.<issued, Unix seconds>.<hex HMAC-SHA256(key, message)>
//! message = "lakegate-worker-call-v1" \n <call> \n <issued> \n <fields of the call>
//! ```
//!
//! The fields are everything a call asks a worker to do: for a stage plan,
//! its task (query, stage, task number and count), the worker it is meant
//! for and the SHA-256 of the encoded plan; for a task's rows, the task and
//! the partitions. A signature older than [`MAX_AGE`] (or that far in the
//! future) is refused, which bounds how long a captured call could be
//! replayed; a stage plan replayed while the worker still holds its task is
//! refused (a task is set once). Signatures authenticate, they do not
//! encrypt: rows between workers and the coordinator travel as plain gRPC,
//! so workers belong on the servers' private network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The header carrying a call's signature.
pub const SIGNATURE_HEADER: &str = "x-lakegate-fleet-signature";

/// How long a signature is accepted after it was made (and how far a
/// worker's clock may be behind the coordinator's).
pub const MAX_AGE: Duration = Duration::from_secs(300);

const VERSION: &str = "v1";
const DOMAIN: &str = "lakegate-worker-call-v1";

/// The key coordinators sign worker calls with and workers check them by:
/// derived from the fleet's server key, so that it signs nothing else.
#[derive(Clone)]
pub struct FleetKey {
    key: [u8; 32],
}

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(..)") // never print the key
    }
}

/// The task a call is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFields<'a> {
    /// The query's id, as sent (16 bytes).
    pub query_id: &'a [u8],
    /// The stage within the query.
    pub stage_id: u64,
    /// The task within the stage.
    pub task_number: u64,
}

/// What a worker call asks for: the fields its signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedCall<'a> {
    /// Take this stage plan for this task.
    SetPlan {
        /// The task.
        task: TaskFields<'a>,
        /// Tasks sharing the plan.
        task_count: u64,
        /// The worker the plan is meant for.
        target_worker_url: &'a str,
        /// The encoded plan.
        plan: &'a [u8],
    },
    /// Stream these partitions of a task's output.
    ExecuteTask {
        /// The task.
        task: TaskFields<'a>,
        /// First partition.
        partition_start: u64,
        /// One past the last partition.
        partition_end: u64,
    },
}

/// Why a call's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The call carries no signature.
    Missing,
    /// The header is not a signature of this format.
    Malformed,
    /// Made too long ago, or in the future.
    Expired,
    /// Does not match the call: tampered, or signed with another key.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Missing => "unsigned call (no fleet signature)",
            Self::Malformed => "malformed fleet signature",
            Self::Expired => "expired fleet signature",
            Self::Mismatch => "fleet signature does not match the call (tampered, or another key)",
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl FleetKey {
    /// The fleet key derived from `secret`, the servers' shared key (the
    /// contents of `--key-file`).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"lakegate fleet: worker calls");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, call: &SignedCall<'_>, issued: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        let task_line = |task: &TaskFields<'_>| {
            format!(
                "{}\n{}\n{}",
                hex::encode(task.query_id),
                task.stage_id,
                task.task_number
            )
        };
        let message = match call {
            SignedCall::SetPlan {
                task,
                task_count,
                target_worker_url,
                plan,
            } => format!(
                "set-plan\n{issued}\n{}\n{task_count}\n{target_worker_url}\n{}",
                task_line(task),
                hex::encode(Sha256::digest(plan))
            ),
            SignedCall::ExecuteTask {
                task,
                partition_start,
                partition_end,
            } => format!(
                "execute-task\n{issued}\n{}\n{partition_start}\n{partition_end}",
                task_line(task)
            ),
        };
        mac.update(DOMAIN.as_bytes());
        mac.update(b"\n");
        mac.update(message.as_bytes());
        mac
    }

    /// The signature header's value for `call`, made now.
    pub fn sign(&self, call: &SignedCall<'_>) -> String {
        let issued = now_secs();
        let mac = self.mac(call, issued).finalize().into_bytes();
        format!("{VERSION}.{issued}.{}", hex::encode(mac))
    }

    /// Checks `header` (the signature header's value, if any) against
    /// `call`: the signature in constant time, then its age.
    pub fn verify(
        &self,
        header: Option<&str>,
        call: &SignedCall<'_>,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut parts = header.splitn(3, '.');
        let (Some(VERSION), Some(issued), Some(mac)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(SignatureError::Malformed);
        };
        let issued: u64 = issued.parse().map_err(|_| SignatureError::Malformed)?;
        let mac = hex::decode(mac).map_err(|_| SignatureError::Malformed)?;
        self.mac(call, issued)
            .verify_slice(&mac)
            .map_err(|_| SignatureError::Mismatch)?;
        if now_secs().abs_diff(issued) > MAX_AGE.as_secs() {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_call(plan: &[u8]) -> SignedCall<'_> {
        SignedCall::SetPlan {
            task: TaskFields {
                query_id: &[7; 16],
                stage_id: 1,
                task_number: 0,
            },
            task_count: 2,
            target_worker_url: "http://127.0.0.1:7001/",
            plan,
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_call_and_key() {
        let key = FleetKey::derive(b"0123456789abcdef0123456789abcdef");
        let header = key.sign(&plan_call(b"plan"));
        assert_eq!(key.verify(Some(&header), &plan_call(b"plan")), Ok(()));
        assert_eq!(
            key.verify(Some(&header), &plan_call(b"plan!")),
            Err(SignatureError::Mismatch)
        );
        let other = FleetKey::derive(b"another key, another fleet......");
        assert_eq!(
            other.verify(Some(&header), &plan_call(b"plan")),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(None, &plan_call(b"plan")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            key.verify(Some("v1.x.00"), &plan_call(b"plan")),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn an_old_signature_is_refused() {
        let key = FleetKey::derive(b"0123456789abcdef0123456789abcdef");
        let issued = now_secs() - MAX_AGE.as_secs() - 5;
        let mac = key.mac(&plan_call(b"plan"), issued).finalize().into_bytes();
        let header = format!("v1.{issued}.{}", hex::encode(mac));
        assert_eq!(
            key.verify(Some(&header), &plan_call(b"plan")),
            Err(SignatureError::Expired)
        );
    }
}
