-- The W3C trace context of the request that caused an event (null when it was
-- not traced): its delivery continues that trace, in whichever process.
alter table outbox_events add column traceparent text;
