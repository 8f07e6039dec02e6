//! Files made in the browser for the user to keep: exports of the log, a public key, a
//! signed checkpoint. The API needs the bearer token, so a plain link cannot fetch them:
//! the page fetches, then offers the text as a download.

use crate::api::{self, Failure};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// Offers `contents` to the user as a file download.
pub fn download(file_name: &str, mime: &str, contents: &str) -> Result<(), JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(contents));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a")?.unchecked_into();
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
    web_sys::Url::revoke_object_url(&url)
}

/// Every item of a paged listing (`{items, next_cursor}`), following the cursor:
/// `path(cursor)` is the address of a page.
pub async fn every_page(path: impl Fn(Option<&str>) -> String) -> Result<Vec<Value>, Failure> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = api::get(&path(cursor.as_deref())).await?;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(all),
        }
    }
}

/// Fetches a text answer of the API and offers it as a file; the failure as a sentence.
pub async fn save_text(path: &str, file_name: &str) -> Result<(), String> {
    let text = api::get_text(path).await.map_err(|f| f.message)?;
    download(file_name, "text/plain", &text).map_err(|_| "The browser refused the download.".to_owned())
}
