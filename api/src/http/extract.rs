//! Extractors that answer bad input in the shared error shape, naming the field.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

/// Deepest nesting of arrays and objects accepted in a request body.
const MAX_JSON_DEPTH: usize = 32;

/// A JSON body. Syntax errors are 400; a missing or mistyped field is 422 naming the
/// field; a body over the configured limit is 413.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
    crate::AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = json_content_type(req.headers());
        let bytes = read_body(req, state).await?;
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(Json)
    }
}

/// A JSON body that may be left out: an empty body reads as `T::default()` (for
/// actions whose body only adds optional detail, such as a review's comment).
pub struct JsonOrEmpty<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrEmpty<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Default,
    crate::AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = json_content_type(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonOrEmpty(T::default()));
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(JsonOrEmpty)
    }
}

/// Reads a request body, within the body timeout (a client that trickles or stalls its
/// body cannot hold the connection) and the size limit.
pub async fn read_body<S>(req: Request, state: &S) -> Result<Bytes, ApiError>
where
    S: Send + Sync,
    crate::AppState: FromRef<S>,
{
    let timeout = crate::AppState::from_ref(state).settings.body_timeout;
    let read =
        tokio::time::timeout(timeout, Bytes::from_request(req, state)).await.map_err(|_| ApiError::BodyTimeout)?;
    read.map_err(|e: BytesRejection| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest { code: "unreadable_body", message: e.body_text(), field: None }
        }
    })
}

fn json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false)
}

/// Deserializes a JSON body, reporting where it went wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_depth(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = (path != ".").then_some(path);
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest {
                code: "malformed_json",
                message: format!("the body is not valid JSON: {inner}"),
                field: None,
            }
        } else {
            // Missing fields are reported at the enclosing object; name the field.
            let message = inner.to_string();
            let field = field.or_else(|| {
                message.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_owned)
            });
            ApiError::Unprocessable { code: "invalid_body", message, field }
        }
    })?;
    de.end().map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: format!("unexpected data after the JSON value: {e}"),
        field: None,
    })?;
    Ok(value)
}

/// Refuses absurdly nested JSON before a parser recurses into it.
fn check_depth(bytes: &[u8]) -> Result<(), ApiError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ApiError::BadRequest {
                        code: "too_deeply_nested",
                        message: format!("the JSON body nests deeper than {MAX_JSON_DEPTH} levels"),
                        field: None,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Query parameters; errors are 400 naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Query(q.0)).map_err(
            |e: QueryRejection| {
                let text = e.body_text();
                let message = text.trim_start_matches("Failed to deserialize query string: ").to_owned();
                let field =
                    message.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_owned);
                ApiError::bad_query(field, message)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn json_errors_name_the_field() {
        match parse_json::<Body>(br#"{"name": "x"}"#) {
            Err(ApiError::Unprocessable { field, .. }) => {
                assert_eq!(field.as_deref(), Some("count"))
            }
            other => panic!("{other:?}"),
        }
        match parse_json::<Body>(br#"{"name": 5, "count": 1}"#) {
            Err(ApiError::Unprocessable { field, .. }) => {
                assert_eq!(field.as_deref(), Some("name"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_json::<Body>(b"{"), Err(ApiError::BadRequest { code: "malformed_json", .. })));
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(matches!(
            parse_json::<serde_json::Value>(deep.as_bytes()),
            Err(ApiError::BadRequest { code: "too_deeply_nested", .. })
        ));
    }
}
