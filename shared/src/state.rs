//! State objects in S3: one JSON document per key, read with its ETag and written only if nobody wrote it since
//! (`If-Match`, or `If-None-Match: *` for the first write). Two runs at once cannot both act on the same state:
//! the second one's write is refused with [`StateWriteError::Conflict`].

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::AwsError;

/// A bucket of state objects.
#[derive(Clone, Debug)]
pub struct StateStore {
    s3: Client,
    bucket: String,
    region: String,
}

/// A state object as read: its content (or why it is not one) and its version.
#[derive(Debug)]
pub struct Stored<T> {
    /// The content, or the parse error of an object that is not a state of this type.
    pub value: Result<T, String>,
    /// Its ETag, for the conditional write.
    pub etag: String,
}

/// Why a state object was not written.
#[derive(Debug)]
pub enum StateWriteError {
    /// Another run wrote it since it was read.
    Conflict,
    /// Any other failure.
    Aws(AwsError),
}

impl std::fmt::Display for StateWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateWriteError::Conflict => {
                f.write_str("another run wrote the state since it was read")
            }
            StateWriteError::Aws(e) => e.fmt(f),
        }
    }
}

impl StateStore {
    /// State objects in `bucket`, through `s3` (of `region`, for error messages).
    pub fn new(s3: Client, bucket: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
            region: region.into(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object `key` (`None`: there is none yet).
    pub async fn read<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Stored<T>>, AwsError> {
        let result = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(AwsError::from_sdk("s3:GetObject", &self.region, &e)),
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| AwsError::Unreachable {
                operation: "s3:GetObject".into(),
                region: self.region.clone(),
                message: e.to_string(),
            })?;
        let value = serde_json::from_slice(&body.into_bytes()).map_err(|e| {
            format!(
                "s3://{}/{key} is not a state object of this kind: {e}",
                self.bucket
            )
        });
        Ok(Some(Stored { value, etag }))
    }

    /// Write `value` as `key` if its version is still `etag` (`None`: if there is no object yet). Returns the
    /// new ETag.
    pub async fn write<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        etag: Option<&str>,
    ) -> Result<String, StateWriteError> {
        let body = serde_json::to_vec(value).map_err(|e| {
            StateWriteError::Aws(AwsError::Unreachable {
                operation: "s3:PutObject".into(),
                region: self.region.clone(),
                message: format!("state not serializable: {e}"),
            })
        })?;
        let put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let put = match etag {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) =>
            {
                Err(StateWriteError::Conflict)
            }
            Err(e) => Err(StateWriteError::Aws(AwsError::from_sdk(
                "s3:PutObject",
                &self.region,
                &e,
            ))),
        }
    }
}
