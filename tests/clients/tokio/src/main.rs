// tokio-postgres against one server: it refuses to send a parameter whose type the server describes wrongly,
// so every call checks the ParameterDescription. Prints one JSON document; tests/clients/test_strict_drivers.py
// compares the output for the test Postgres and for bemidb. Built offline from Debian's librust-*-dev crates.
use serde_json::{json, Map, Value};
use tokio_postgres::{types::ToSql, Client, NoTls};

async fn run(client: &Client, out: &mut Map<String, Value>, label: &str, sql: &str,
             params: &[&(dyn ToSql + Sync)]) {
    let value = match client.query(sql, params).await {
        Ok(rows) => json!(rows.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<i64>>()),
        Err(e) => json!(format!("error: {}", e.code().map(|c| c.code().to_string()).unwrap_or(e.to_string()))),
    };
    out.insert(label.to_string(), value);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args().nth(1).expect("connection string");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(async move { connection.await.ok(); });
    let mut out = Map::new();
    let uid = uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    let names = vec!["ann".to_string(), "cy".to_string()];
    let ids: Vec<i64> = vec![1, 2];
    let born = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap();
    let seen = chrono::DateTime::parse_from_rfc3339("2024-02-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    run(&client, &mut out, "any text[]", "SELECT id FROM people WHERE name = ANY($1) ORDER BY id", &[&names]).await;
    run(&client, &mut out, "any int8[]", "SELECT id FROM people WHERE id = ANY($1) ORDER BY id", &[&ids]).await;
    run(&client, &mut out, "uuid", "SELECT id FROM people WHERE uid = $1", &[&uid]).await;
    run(&client, &mut out, "uuid any", "SELECT id FROM people WHERE uid = ANY($1)", &[&vec![uid]]).await;
    run(&client, &mut out, "date", "SELECT id FROM people WHERE born < $1 ORDER BY id", &[&born]).await;
    run(&client, &mut out, "timestamptz", "SELECT id FROM people WHERE seen >= $1 ORDER BY id", &[&seen]).await;
    run(&client, &mut out, "like", "SELECT id FROM people WHERE name LIKE $1 ORDER BY id", &[&"%n%"]).await;
    run(&client, &mut out, "limit", "SELECT id FROM people ORDER BY id LIMIT $1", &[&2i64]).await;
    println!("{}", Value::Object(out));
}
