//! `pazar serve --demo`: a first run that shows a working shop. An empty
//! catalog gets a small demo catalog, and the shop gets an administrator with
//! a fresh password, printed once; a shop that has products is left alone.

use pazar_actors::{DomainError, Role};
use pazar_app::Shop;
use pazar_catalog::NewProduct;
use pazar_users::NewUser;
use rand::Rng;

/// The demo administrator's login.
pub const ADMIN_EMAIL: &str = "admin@pazar.localhost";

/// name, description, SKU, price in cents, stock.
const PRODUCTS: [(&str, &str, &str, i64, i64); 12] = [
    (
        "Espresso Machine",
        "Pump espresso maker with a 15 bar pump and a steam wand.",
        "DEMO-ESP-1",
        59_900,
        5,
    ),
    (
        "Coffee Grinder",
        "Conical burr grinder for espresso and filter beans.",
        "DEMO-GRD-1",
        12_000,
        14,
    ),
    (
        "Porcelain Teapot",
        "A white teapot for four cups, with a steel infuser.",
        "DEMO-TEA-1",
        2_500,
        30,
    ),
    (
        "Cast Iron Teapot",
        "Heavy Japanese-style teapot that keeps tea hot.",
        "DEMO-TEA-2",
        6_900,
        0,
    ),
    (
        "Tea Cup Set",
        "Four porcelain cups with saucers.",
        "DEMO-CUP-4",
        3_200,
        22,
    ),
    (
        "Travel Mug",
        "Insulated steel mug, keeps coffee hot for six hours.",
        "DEMO-MUG-1",
        1_900,
        80,
    ),
    (
        "Linen Apron",
        "Stonewashed linen apron with two pockets.",
        "DEMO-APR-1",
        2_900,
        12,
    ),
    (
        "Chef's Knife",
        "20 cm stainless chef's knife, full tang.",
        "DEMO-KNF-1",
        8_900,
        7,
    ),
    (
        "Cutting Board",
        "End-grain walnut board, 40 by 30 cm.",
        "DEMO-BRD-1",
        7_500,
        3,
    ),
    (
        "Pour-over Kettle",
        "Gooseneck kettle for slow, even pouring.",
        "DEMO-KET-1",
        4_400,
        18,
    ),
    (
        "Milk Frother",
        "Handheld frother for lattes and hot chocolate.",
        "DEMO-FRO-1",
        900,
        50,
    ),
    (
        "Coffee Beans 1 kg",
        "Medium roast from Ethiopia and Brazil.",
        "DEMO-BEA-1",
        2_400,
        120,
    ),
];

/// Fills an empty shop; says what it made (on stderr: stdout announces the address).
pub async fn fill(shop: &Shop) -> Result<(), DomainError> {
    let Some(started) = &shop.catalog else {
        return Err(DomainError::Unavailable(
            "--demo needs the catalog role in this process".into(),
        ));
    };
    if started.catalog.has_products().await? {
        eprintln!("demo: the shop has products already; nothing added");
        return Ok(());
    }
    let products = PRODUCTS
        .iter()
        .map(|(name, description, sku, price, stock)| NewProduct {
            name: (*name).into(),
            description: (*description).into(),
            sku: (*sku).into(),
            price_amount: *price,
            price_currency: "EUR".into(),
            stock: *stock,
        })
        .collect();
    started.catalog.create_many(products).await?;
    let password: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    match shop
        .accounts
        .register(NewUser::parse(
            ADMIN_EMAIL,
            &password,
            "Demo admin",
            Role::Admin,
        )?)
        .await
    {
        Ok(_) => eprintln!(
            "demo: {} products added; sign in as administrator with {ADMIN_EMAIL} / {password}",
            PRODUCTS.len()
        ),
        Err(DomainError::Conflict { .. }) => eprintln!(
            "demo: {} products added; the administrator {ADMIN_EMAIL} exists already",
            PRODUCTS.len()
        ),
        Err(error) => return Err(error),
    }
    Ok(())
}
