//! What a fresh account lacks and how IAM's eventual consistency shows: the service-linked roles ECS, RDS,
//! ElastiCache and Application Auto Scaling act through (created before a deploy writes anything, so the
//! first `CreateCluster` or `CreateService` does not fail on them), and a bounded retry for calls that fail
//! while a role created seconds earlier is not yet usable everywhere.
//!
//! Creating the roles needs `iam:CreateServiceLinkedRole` (and `iam:ListRoles` to see which exist).

use std::future::Future;
use std::time::Duration;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{AwsError, Clients};
use crate::Error;

/// The services whose service-linked role the stack needs, as `CreateServiceLinkedRole` names them.
pub const SERVICE_LINKED_ROLES: &[&str] = &[
    "ecs.amazonaws.com",
    "rds.amazonaws.com",
    "elasticache.amazonaws.com",
    "ecs.application-autoscaling.amazonaws.com",
];

/// Pauses between attempts of a call that failed because a role is not usable yet: about a minute in all,
/// what IAM's propagation takes in practice.
pub const PROPAGATION_PAUSES: [Duration; 6] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
    Duration::from_secs(15),
    Duration::from_secs(15),
];

/// Creates the service-linked roles the account does not have yet (AWS keeps them under
/// `/aws-service-role/<service>/`). Returns the services whose role was created.
pub async fn ensure_service_linked_roles(c: &Clients) -> Result<Vec<&'static str>, Error> {
    let roles = c
        .iam
        .list_roles()
        .path_prefix("/aws-service-role/")
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| Error::Aws(AwsError::new("iam:ListRoles", &e)))?;
    let mut created = Vec::new();
    for svc in SERVICE_LINKED_ROLES {
        let path = format!("/aws-service-role/{svc}/");
        if roles.iter().any(|r| r.path() == path) {
            continue;
        }
        match c
            .iam
            .create_service_linked_role()
            .aws_service_name(*svc)
            .send()
            .await
        {
            Ok(_) => created.push(*svc),
            Err(e) if already_taken(&e) => {}
            Err(e) => {
                let mut err = AwsError::new("iam:CreateServiceLinkedRole", &e);
                err.message.push_str(&format!(
                    " (the service-linked role of {svc}: allow iam:CreateServiceLinkedRole, or create it once with `aws iam create-service-linked-role --aws-service-name {svc}`)"
                ));
                return Err(Error::Aws(err));
            }
        }
    }
    Ok(created)
}

/// Whether `CreateServiceLinkedRole` failed because the role exists: AWS answers `InvalidInput` with
/// "Service role name … has been taken in this account" (no dedicated error code, hence the message).
pub fn already_taken(e: &impl ProvideErrorMetadata) -> bool {
    e.code() == Some("EntityAlreadyExists")
        || (e.code() == Some("InvalidInput")
            && e.message().is_some_and(|m| m.contains("has been taken")))
}

/// Whether an error says a role cannot be assumed (yet): ECS's "Unable to assume the service linked role",
/// Application Auto Scaling's "Unable to assume IAM role", Lambda's "cannot be assumed by Lambda". Each
/// service reports it under a generic validation code, so only the message tells.
pub fn role_not_ready(e: &impl ProvideErrorMetadata) -> bool {
    e.message().is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("unable to assume") || m.contains("cannot be assumed")
    })
}

/// Sends `call` again after each of `pauses` while it fails with [`role_not_ready`]; any other outcome, or
/// the last failure, is returned as is.
pub async fn retry_while_role_not_ready<T, E, F, Fut>(
    pauses: &[Duration],
    mut call: F,
) -> Result<T, E>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut pauses = pauses.iter();
    loop {
        match call().await {
            Err(e) if role_not_ready(&e) => match pauses.next() {
                Some(p) => tokio::time::sleep(*p).await,
                None => return Err(e),
            },
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::operation::create_service::CreateServiceError;
    use aws_smithy_types::error::ErrorMetadata;
    use std::cell::Cell;

    fn ecs_error(code: &str, message: &str) -> CreateServiceError {
        CreateServiceError::generic(ErrorMetadata::builder().code(code).message(message).build())
    }

    #[tokio::test]
    async fn a_role_not_yet_usable_is_retried_a_bounded_number_of_times() {
        let pauses = [Duration::ZERO; 3];
        let calls = Cell::new(0);
        let r: Result<u32, _> = retry_while_role_not_ready(&pauses, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(ecs_error(
                        "InvalidParameterException",
                        "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
                    ))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3, "succeeds once the role is usable");

        calls.set(0);
        let r: Result<(), _> = retry_while_role_not_ready(&pauses, || {
            calls.set(calls.get() + 1);
            async {
                Err(ecs_error(
                    "InvalidParameterException",
                    "Unable to assume IAM role",
                ))
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 4, "one attempt per pause, plus the first");

        calls.set(0);
        let r: Result<(), _> = retry_while_role_not_ready(&pauses, || {
            calls.set(calls.get() + 1);
            async { Err(ecs_error("InvalidParameterException", "subnet not found")) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.get(), 1, "other failures are not retried");
    }

    #[test]
    fn an_existing_service_linked_role_is_not_an_error() {
        use aws_sdk_iam::operation::create_service_linked_role::CreateServiceLinkedRoleError;
        let e = |code: &str, msg: &str| {
            CreateServiceLinkedRoleError::generic(
                ErrorMetadata::builder().code(code).message(msg).build(),
            )
        };
        assert!(already_taken(&e(
            "InvalidInput",
            "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix."
        )));
        assert!(already_taken(&e("EntityAlreadyExists", "exists")));
        assert!(!already_taken(&e("InvalidInput", "bad service name")));
        assert!(!already_taken(&e("AccessDenied", "has been taken")));
    }
}
