//! Workloads for the replication tests: a simple table whose values compare as text in
//! every store, scripted statements, and a random writer of multi-statement transactions.

use super::source::Source;

/// The simple table: integers, text, a decimal and a nullable text column.
pub const ITEMS: &str = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, \
     qty INT NOT NULL, price DECIMAL(10,2) NOT NULL, note TEXT NULL)";

/// A second table, to see rows land in the right collection/index/table.
pub const ORDERS: &str = "CREATE TABLE orders (id INT PRIMARY KEY, item_id INT NOT NULL, \
     amount DECIMAL(12,3) NOT NULL, status VARCHAR(16) NOT NULL)";

/// An `items` row's values for `INSERT … VALUES`.
pub fn item_values(id: u32, tag: &str, round: u32) -> String {
    let note = if id % 3 == 0 {
        "NULL".to_owned()
    } else {
        format!("'note {tag} {id} r{round}'")
    };
    format!(
        "({id}, '{tag} item {id}', {}, {}.{:02}, {note})",
        id * 10 + round,
        id + round,
        (id * 7 + round) % 100
    )
}

/// Inserts rows `1..=n` of `items` and `orders` in `schema`, updates some, deletes some,
/// in a few transactions; `tag` makes the values differ between schemas.
pub fn scripted(schema: &str, tag: &str, n: u32) -> Vec<String> {
    let items: Vec<String> = (1..=n).map(|id| item_values(id, tag, 0)).collect();
    let orders: Vec<String> = (1..=n)
        .map(|id| format!("({id}, {}, {id}.125, 'new')", id % 5 + 1))
        .collect();
    vec![
        "BEGIN".into(),
        format!("INSERT INTO `{schema}`.items VALUES {}", items.join(", ")),
        format!("INSERT INTO `{schema}`.orders VALUES {}", orders.join(", ")),
        "COMMIT".into(),
        format!(
            "UPDATE `{schema}`.items SET qty = qty + 1, note = 'updated {tag}' WHERE id % 4 = 1"
        ),
        format!(
            "UPDATE `{schema}`.orders SET status = 'paid', amount = amount * 2 WHERE id % 2 = 0"
        ),
        format!("DELETE FROM `{schema}`.items WHERE id % 5 = 0"),
        format!("DELETE FROM `{schema}`.orders WHERE id % 7 = 0"),
        format!("UPDATE `{schema}`.items SET name = 'renamed {tag}' WHERE id = 2"),
    ]
}

/// A writer of random transactions on `items` of one schema: each transaction holds 1–5
/// inserts, updates (also of a row's key-unrelated columns) and deletes.
pub struct RandomWriter {
    rng: fastrand::Rng,
    schema: String,
    next_id: u32,
    live: Vec<u32>,
    round: u32,
}

impl RandomWriter {
    pub fn new(schema: &str, seed: u64) -> RandomWriter {
        RandomWriter {
            rng: fastrand::Rng::with_seed(seed),
            schema: schema.to_owned(),
            next_id: 1,
            live: Vec::new(),
            round: 0,
        }
    }

    /// The statements of one transaction (BEGIN … COMMIT).
    pub fn transaction(&mut self) -> Vec<String> {
        self.round += 1;
        let schema = &self.schema;
        let mut out = vec!["BEGIN".to_owned()];
        for _ in 0..self.rng.u32(1..=5) {
            let pick = self.rng.u32(0..10);
            if self.live.is_empty() || pick < 5 {
                let id = self.next_id;
                self.next_id += 1;
                self.live.push(id);
                out.push(format!(
                    "INSERT INTO `{schema}`.items VALUES {}",
                    item_values(id, "w", self.round)
                ));
            } else if pick < 8 {
                let id = self.live[self.rng.usize(..self.live.len())];
                out.push(format!(
                    "UPDATE `{schema}`.items SET qty = qty + 1, price = price + 0.01, \
                     note = 'r{}' WHERE id = {id}",
                    self.round
                ));
            } else {
                let at = self.rng.usize(..self.live.len());
                let id = self.live.swap_remove(at);
                out.push(format!("DELETE FROM `{schema}`.items WHERE id = {id}"));
            }
        }
        out.push("COMMIT".to_owned());
        out
    }

    /// Writes one transaction.
    pub async fn write(&mut self, source: &mut Source) {
        for statement in self.transaction() {
            source.run(statement).await;
        }
    }
}
