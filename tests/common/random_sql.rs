//! A generator of random SQL, deep and wide: operators, nesting, IN lists,
//! CASE, function calls, subqueries, CTEs and set operations, over one
//! table's columns. Statements are valid or invalid by chance; the tests
//! using them only ask that each one answers or is refused cleanly.

/// A small deterministic random source (SplitMix64), seeded by the test,
/// with a budget of terms so that nested long chains stay within a few
/// hundred kilobytes of SQL.
pub struct Rng {
    state: u64,
    budget: usize,
}

/// Terms one statement may have, over all its chains and lists.
const TERM_BUDGET: usize = 30_000;

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            budget: TERM_BUDGET,
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }

    /// A length, usually small, sometimes in the thousands, within what is
    /// left of the budget.
    fn length(&mut self) -> usize {
        let wanted = match self.below(10) {
            0 => 500 + self.below(3000),
            1 | 2 => 10 + self.below(100),
            _ => 1 + self.below(5),
        };
        let granted = wanted.min(self.budget).max(1);
        self.budget = self.budget.saturating_sub(granted);
        granted
    }
}

/// The table statements read, and its columns by kind.
pub struct TableShape {
    pub table: &'static str,
    pub numbers: &'static [&'static str],
    pub texts: &'static [&'static str],
}

/// A random statement over `shape`.
pub fn statement(rng: &mut Rng, shape: &TableShape) -> String {
    let query = query(rng, shape, 0);
    match rng.below(6) {
        0 => format!("WITH c AS ({query}) SELECT * FROM c"),
        1 => {
            let branches: Vec<String> = (0..rng.length())
                .map(|_| format!("SELECT {} AS v", number(rng, shape, 2)))
                .collect();
            let operator = rng.pick(&[" UNION ALL ", " UNION ", " INTERSECT ", " EXCEPT "]);
            branches.join(operator)
        }
        2 => format!("EXPLAIN {query}"),
        _ => query,
    }
}

fn query(rng: &mut Rng, shape: &TableShape, depth: usize) -> String {
    let table = shape.table;
    let projection = match rng.below(4) {
        0 => "count(*)".to_string(),
        1 => format!("sum({})", number(rng, shape, depth + 1)),
        2 => format!(
            "{}, {}",
            number(rng, shape, depth + 1),
            text(rng, shape, depth + 1)
        ),
        _ => "*".to_string(),
    };
    let mut sql = format!("SELECT {projection} FROM {table}");
    if rng.below(3) > 0 {
        sql.push_str(&format!(" WHERE {}", boolean(rng, shape, depth + 1)));
    }
    if rng.below(4) == 0 && projection.starts_with("count") {
        sql.push_str(&format!(" GROUP BY {}", shape.numbers[0]));
    }
    if rng.below(4) == 0 {
        sql.push_str(&format!(" LIMIT {}", rng.below(20)));
    }
    sql
}

/// How deep expressions may go: sometimes past the engine's limit.
fn too_deep(rng: &mut Rng, depth: usize) -> bool {
    depth > 3 && rng.below(depth) > 2
}

fn boolean(rng: &mut Rng, shape: &TableShape, depth: usize) -> String {
    if too_deep(rng, depth) {
        return format!("{} > {}", rng.pick(shape.numbers), rng.below(100));
    }
    match rng.below(9) {
        0 => {
            let op = rng.pick(&[" AND ", " OR "]);
            let terms: Vec<String> = (0..rng.length())
                .map(|_| comparison(rng, shape, depth + 1))
                .collect();
            terms.join(op)
        }
        1 => {
            let values: Vec<String> = (0..rng.length()).map(|i| i.to_string()).collect();
            let not = if rng.below(2) == 0 { "NOT " } else { "" };
            format!(
                "{} {not}IN ({})",
                rng.pick(shape.numbers),
                values.join(", ")
            )
        }
        2 => format!("NOT ({})", boolean(rng, shape, depth + 1)),
        3 => format!(
            "{} IN (SELECT {} FROM {} WHERE {})",
            rng.pick(shape.numbers),
            rng.pick(shape.numbers),
            shape.table,
            boolean(rng, shape, depth + 1)
        ),
        4 => format!("EXISTS ({})", query(rng, shape, depth + 1)),
        5 => format!("{} LIKE '%{}%'", text(rng, shape, depth + 1), rng.below(10)),
        6 => format!("({}) IS NOT NULL", number(rng, shape, depth + 1)),
        _ => comparison(rng, shape, depth + 1),
    }
}

fn comparison(rng: &mut Rng, shape: &TableShape, depth: usize) -> String {
    let op = rng.pick(&["=", "<>", "<", ">=", "IS DISTINCT FROM"]);
    format!(
        "{} {op} {}",
        number(rng, shape, depth + 1),
        number(rng, shape, depth + 1)
    )
}

fn number(rng: &mut Rng, shape: &TableShape, depth: usize) -> String {
    if too_deep(rng, depth) {
        return rng.pick(shape.numbers).to_string();
    }
    match rng.below(12) {
        0 => {
            let op = rng.pick(&[" + ", " - ", " * ", " / ", " % "]);
            let terms: Vec<String> = (0..rng.length())
                .map(|_| number(rng, shape, depth + 1))
                .collect();
            terms.join(op)
        }
        1 => {
            let levels = rng.length();
            format!(
                "{}{}{}",
                "(".repeat(levels),
                rng.pick(shape.numbers),
                ")".repeat(levels)
            )
        }
        2 => {
            let levels = rng.length();
            let function = rng.pick(&["abs(", "coalesce(", "-("]);
            format!(
                "{}{}{}",
                function.repeat(levels),
                rng.pick(shape.numbers),
                ")".repeat(levels)
            )
        }
        3 => {
            let whens: Vec<String> = (0..rng.length())
                .map(|i| format!("WHEN {} THEN {i}", comparison(rng, shape, depth + 1)))
                .collect();
            format!("CASE {} ELSE 0 END", whens.join(" "))
        }
        4 => format!(
            "(SELECT max({}) FROM {})",
            rng.pick(shape.numbers),
            shape.table
        ),
        5 => format!("character_length({})", text(rng, shape, depth + 1)),
        6 => format!("CAST({} AS INT)", text(rng, shape, depth + 1)),
        7 => "NULL".to_string(),
        8 => format!("{}.5", rng.below(1000)),
        9 => rng.below(1000).to_string(),
        _ => rng.pick(shape.numbers).to_string(),
    }
}

fn text(rng: &mut Rng, shape: &TableShape, depth: usize) -> String {
    if too_deep(rng, depth) {
        return rng.pick(shape.texts).to_string();
    }
    match rng.below(6) {
        0 => {
            let terms: Vec<String> = (0..rng.length())
                .map(|_| text(rng, shape, depth + 1))
                .collect();
            terms.join(" || ")
        }
        1 => format!("upper({})", text(rng, shape, depth + 1)),
        2 => format!("'t{}'", rng.below(100)),
        3 => format!("CAST({} AS VARCHAR)", number(rng, shape, depth + 1)),
        _ => rng.pick(shape.texts).to_string(),
    }
}
