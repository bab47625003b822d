//! `GET /api/v1/cart/live`: a WebSocket of cart snapshots.
//!
//! The token comes in the `Authorization: Bearer` header or, for browsers (which
//! cannot set headers on a WebSocket), in an `access_token` query parameter; without
//! a valid one the upgrade is refused with 401. On connect the current snapshot is
//! sent; after that, every change of the cart (from any tab, device or API client)
//! and every catalog change that matters to it. The socket is read only to notice
//! that the client went away.

use crate::cart_routes::CartDto;
use crate::Orders;
use futures_util::{SinkExt, StreamExt};
use pazar_http::auth::Authenticator;
use pazar_http::error::{problem, ApiError};
use poem::web::websocket::{CloseCode, Message, WebSocket};
use poem::web::Data;
use poem::{handler, IntoResponse, Request};
use poem_openapi::types::ToJSON;
use std::sync::Arc;

fn bearer_token(request: &Request) -> Option<String> {
    let header = request
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    header.or_else(|| {
        request.uri().query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("access_token=").map(str::to_owned))
        })
    })
}

fn frame(snapshot: crate::cart::CartSnapshot) -> Message {
    Message::Text(CartDto::from(snapshot).to_json_string())
}

/// How often a live socket pings its client: a quiet socket is not a silent
/// connection (see [`pazar_http::connection`]), and a dead peer is noticed.
#[derive(Clone, Copy, Debug)]
pub struct PingEvery(pub std::time::Duration);

/// The WebSocket endpoint.
#[handler]
pub async fn live_cart(
    request: &Request,
    socket: WebSocket,
    auth: Data<&Arc<Authenticator>>,
    orders: Data<&Orders>,
    ping: Data<&PingEvery>,
) -> poem::Result<impl IntoResponse> {
    let ping_every = ping.0 .0.max(std::time::Duration::from_millis(100));
    let token = bearer_token(request)
        .ok_or_else(|| ApiError::unauthorized("a valid bearer access token is required"))?;
    let user = auth.authenticate(&token).await?.user_id()?;
    let live = orders.live_carts();
    // Subscribe before reading the snapshot, so no change can fall in between.
    let mut subscription = live.subscribe(user);
    let first = orders.cart(user).await.map_err(problem)?;
    live.seen(user, &first);
    Ok(socket.on_upgrade(move |stream| async move {
        let (mut sink, mut incoming) = stream.split();
        if sink.send(frame(first)).await.is_err() {
            return;
        }
        let mut pings = tokio::time::interval(ping_every);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = pings.tick() => {
                    if sink.send(Message::Ping(Vec::new())).await.is_err() {
                        break;
                    }
                }
                snapshot = subscription.receiver.recv() => match snapshot {
                    Some(snapshot) => {
                        if sink.send(frame(snapshot)).await.is_err() {
                            break;
                        }
                    }
                    // Dropped by the hub: too slow, or replaced by a newer socket
                    // of the same user. Say which (close code 1008, policy).
                    None => {
                        let reason = subscription.close_reason().unwrap_or("closed");
                        let _ = sink
                            .send(Message::Close(Some((CloseCode::Policy, reason.to_owned()))))
                            .await;
                        break;
                    }
                },
                message = incoming.next() => match message {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = sink.close().await;
    }))
}
