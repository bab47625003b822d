//! Request inputs every service's routes share: a JSON body parsed so that a bad
//! field is named, a UUID path parameter whose malformed value is a 400 naming
//! it, and a listing's status filter.

use crate::error::{problem, ApiError};
use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A JSON request body parsed with serde, so that a malformed body is a 400 that
/// names the offending field (`price.amount`), which poem-openapi's own `Json`
/// cannot do. The schema in the OpenAPI document is still `T`'s.
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .split(';')
            .next()
            .map(|media| {
                let media = media.trim().to_ascii_lowercase();
                media == "application/json" || media.ends_with("+json")
            })
            .unwrap_or(false)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        // The whole body must be one JSON value: trailing garbage is a 400.
        let value: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|error| ApiError::malformed(format!("the body is not JSON: {error}")))?;
        // The bounds the schema declares, and no control characters (422).
        let mut registry = Registry::new();
        T::register(&mut registry);
        crate::validate::check_value(&value, &T::schema_ref(), &registry).map_err(problem)?;
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(value) => Ok(Self(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                let mut problem = ApiError::malformed(if path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                });
                let field = if path == "." {
                    crate::error::field_in(&inner.to_string())
                } else {
                    Some(path)
                };
                if let Some(field) = field {
                    problem = problem.with_field(field);
                }
                Err(problem.into())
            }
        }
    }
}

poem_openapi::impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// A UUID path parameter whose parse is deferred to the handler, so that a
/// malformed id is a 400 naming the parameter (poem-openapi only knows path
/// parameters by position). The OpenAPI schema is `string`/`uuid`.
pub struct UuidParam(Result<Uuid, String>);

impl UuidParam {
    /// The UUID, or a 400 problem naming `field`.
    pub fn parse(&self, field: &str) -> Result<Uuid, ApiError> {
        self.0.clone().map_err(|raw| {
            ApiError::malformed(format!("{field}: {raw:?} is not a UUID")).with_field(field)
        })
    }
}

impl Type for UuidParam {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "string_uuid".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        <Uuid as Type>::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl poem_openapi::types::ParseFromParameter for UuidParam {
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        Ok(Self(value.parse().map_err(|_| value.to_owned())))
    }
}

/// A listing's optional `status` filter: absent or empty is no filter; anything
/// `parse` refuses is a 422 naming `status` and listing the `allowed` values.
pub fn status_filter<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> poem::Result<Option<T>> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => parse(raw).map(Some).ok_or_else(|| {
            problem(pazar_actors::DomainError::invalid(
                "status",
                format!("must be {allowed}"),
            ))
            .into()
        }),
    }
}

/// Money in minor units, as every service's JSON shows it.
#[derive(poem_openapi::Object, Clone, Debug, serde::Deserialize)]
pub struct MoneyDto {
    /// Integer minor units (cents): 1999 is 19.99.
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl From<pazar_actors::Money> for MoneyDto {
    fn from(money: pazar_actors::Money) -> Self {
        Self {
            amount: money.amount,
            currency: money.currency.to_string(),
        }
    }
}
