//! ECR access for `supactl push --env X`: the registry of the config's account and region, and push
//! credentials from GetAuthorizationToken. The push itself is the `images` crate's (plain OCI distribution
//! API with Basic auth), so no other crate needs the AWS SDK.

use base64::Engine as _;

use crate::aws::{sdk_config, AwsError, AwsOptions};
use crate::{Config, Error};

/// Credentials for one ECR registry, valid for 12 hours.
#[derive(Clone)]
pub struct EcrLogin {
    /// `<account>.dkr.ecr.<region>.amazonaws.com` (what the service answers as the proxy endpoint).
    pub host: String,
    /// Repository prefix of this stack: `<name>-<environment>` (lowercase).
    pub prefix: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for EcrLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EcrLogin({}/{}, {}, ***)",
            self.host, self.prefix, self.username
        )
    }
}

/// Calls `ecr:GetAuthorizationToken` in the config's region (or `--region`).
pub async fn login(config: &Config, opts: &AwsOptions) -> Result<EcrLogin, Error> {
    let region = opts
        .region
        .clone()
        .or_else(|| config.region.clone())
        .ok_or(Error::NoRegion)?;
    let sdk = sdk_config(opts, &region).await;
    let client = aws_sdk_ecr::Client::new(&sdk);
    let out = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| Error::Aws(AwsError::new("ecr:GetAuthorizationToken", &e)))?;
    let bad = |why: &str| {
        Error::Internal(format!(
            "ecr:GetAuthorizationToken answered {why}; retry, or check the region"
        ))
    };
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| bad("no authorization data"))?;
    let token = data.authorization_token().ok_or_else(|| bad("no token"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| bad("a token that is not base64 text"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad("a token without user:password"))?;
    let endpoint = data
        .proxy_endpoint()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}.dkr.ecr.{region}.amazonaws.com", config.account_id));
    let host = endpoint
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    Ok(EcrLogin {
        host,
        prefix: config.prefix().to_ascii_lowercase(),
        username: username.to_string(),
        password: password.to_string(),
    })
}
