//! Serves the management API on the data-plane (tiny_http) listener, for
//! the configuration where `manage.listen` equals `server.listen`.

use super::api::Api;
use super::http::{Body, Handler, Request, MAX_BODY};
use crate::transport::{with_header, SseWriter};
use std::io::Read;

pub fn serve(api: &Api, mut req: tiny_http::Request) {
    let mut r = Request {
        method: req.method().as_str().to_ascii_uppercase(),
        remote: req.remote_addr().copied(),
        headers: req
            .headers()
            .iter()
            .map(|h| (h.field.as_str().as_str().to_owned(), h.value.as_str().to_owned()))
            .collect(),
        ..Request::default()
    };
    let url = req.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    r.path = path.to_owned();
    r.query = query.to_owned();
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return respond(req, api.early_error(413, &format!("request body exceeds {MAX_BODY} bytes")));
    }
    let mut body = Vec::new();
    if req.as_reader().take(MAX_BODY as u64 + 1).read_to_end(&mut body).is_err() {
        return respond(req, api.early_error(400, "cannot read the request body"));
    }
    if body.len() > MAX_BODY {
        return respond(req, api.early_error(413, &format!("request body exceeds {MAX_BODY} bytes")));
    }
    r.body = body;
    let reply = api.handle(&r);
    respond_with(api, req, reply);
}

fn respond(req: tiny_http::Request, reply: super::http::Reply) {
    if let Body::Bytes(b) = reply.body {
        let mut resp = tiny_http::Response::from_data(b).with_status_code(reply.status);
        for (k, v) in &reply.headers {
            resp = with_header(resp, k, v);
        }
        let _ = req.respond(with_header(resp, "Cache-Control", "no-store"));
        if let Some(after) = reply.after {
            after();
        }
    }
}

fn respond_with(api: &Api, req: tiny_http::Request, reply: super::http::Reply) {
    match reply.body {
        Body::Bytes(_) => respond(req, reply),
        Body::Events { after } => {
            let Ok(mut w) = SseWriter::start(req, &[]) else { return };
            api.stream_events(after, &mut |bytes| w.raw(bytes));
            let _ = w.finish();
        }
    }
}
