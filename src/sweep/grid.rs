//! A sweep's grid file and its cells: `{"base": …, "fixed": {KEY: VALUE}, "grid": {KEY: [VALUES]}}`,
//! KEY a dotted path into the run configuration as `config.json` writes it (`seed`, `clone.nb`,
//! `tasks.0.train.epochs`, `tasks.*.train.beta`). Expanding it gives one complete, checked run
//! configuration per combination of the grid's values, named by a content hash of that
//! configuration alone, so re-planning the same grid gives the same names and changing one value
//! renames only the cells it touches.

use crate::config::{parse_config, RunConfig};
use crate::{Error, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The grid file, as written.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// A preset name (`quick`, `paper`) or a `config.json` path (relative paths are taken from
    /// the grid file's folder).
    pub base: String,
    /// Values every cell gets.
    #[serde(default)]
    pub fixed: BTreeMap<String, Value>,
    /// The swept keys and their values; the cells are every combination.
    pub grid: BTreeMap<String, Vec<Value>>,
}

/// One cell: its place in the sweep, its hash (the folder name), the swept values it has and its
/// whole configuration.
#[derive(Clone, Debug)]
pub struct Cell {
    pub index: usize,
    pub hash: String,
    pub values: BTreeMap<String, Value>,
    pub config: RunConfig,
}

/// The most cells one grid may expand to.
pub const MAX_CELLS: usize = 10_000;

impl Grid {
    /// Read a grid file strictly: an unknown field is refused, naming it.
    pub fn read(path: &Path) -> Result<Grid> {
        let bytes = crate::files::Bound::GRID.read(path)?;
        serde_json::from_slice(crate::files::without_bom(&bytes)).map_err(|e| Error::Data {
            path: path.display().to_string(),
            msg: format!(
                "not a sweep grid ({}): write {{\"base\": \"quick\", \"fixed\": {{…}}, \"grid\": {{\"clone.nb\": [8, 9]}}}}",
                e.to_string().escape_debug()
            ),
        })
    }

    /// The base configuration: a preset, or a `config.json` (relative to `dir`, the grid file's
    /// folder).
    pub fn base_config(&self, dir: &Path) -> Result<RunConfig> {
        match self.base.as_str() {
            "quick" | "paper" => RunConfig::preset(&self.base),
            p => {
                let path = dir.join(p);
                if !path.is_file() {
                    return Err(Error::invalid(format!(
                        "grid base '{}': no such preset, and {} is not a file: name a preset (quick, paper) or a config.json (relative to the grid file's folder)",
                        p.escape_debug(),
                        path.display()
                    )));
                }
                RunConfig::base("", Some(&path))
            }
        }
    }

    /// Every cell of the grid on `base`, each checked ([`RunConfig::validate`]), in a fixed order
    /// (keys sorted, the last key varying fastest).
    pub fn expand(&self, base: &RunConfig) -> Result<Vec<Cell>> {
        let mut root = serde_json::to_value(base).expect("serialisable");
        // Settings `config.json` leaves out at their default (so that older hashes hold) are
        // still keys a grid may set.
        if let Value::Object(m) = &mut root {
            m.entry("half_blocks")
                .or_insert(Value::Bool(base.half_blocks));
        }
        if self.grid.is_empty() {
            return Err(Error::invalid(
                "the grid sweeps no key: give \"grid\" at least one key with a list of values, e.g. {\"seed\": [0, 1]}",
            ));
        }
        for (key, value) in &self.fixed {
            set(&mut root, key, value, "fixed")?;
            typed(&root, key, value)?;
        }
        let mut count: usize = 1;
        for (key, values) in &self.grid {
            if values.is_empty() {
                return Err(Error::invalid(format!(
                    "grid key '{}' has an empty list: give it at least one value (or move it to \"fixed\")",
                    key.escape_debug()
                )));
            }
            for v in values {
                let mut probe = root.clone();
                set(&mut probe, key, v, "grid")?;
                typed(&probe, key, v)?;
            }
            count = count.saturating_mul(values.len());
        }
        if count > MAX_CELLS {
            return Err(Error::invalid(format!(
                "the grid has {count} cells, more than {MAX_CELLS}: split it into several sweeps"
            )));
        }
        let keys: Vec<&String> = self.grid.keys().collect();
        let mut cells = Vec::with_capacity(count);
        let mut seen = std::collections::HashMap::new();
        for index in 0..count {
            let mut v = root.clone();
            let mut values = BTreeMap::new();
            let mut rest = index;
            for key in keys.iter().rev() {
                let list = &self.grid[*key];
                let value = &list[rest % list.len()];
                rest /= list.len();
                set(&mut v, key, value, "grid")?;
                values.insert((*key).clone(), value.clone());
            }
            let config = to_config(&v, &values)?;
            config.validate().map_err(|e| {
                Error::invalid(format!(
                    "the cell {} is not a valid run: {e}",
                    show(&values)
                ))
            })?;
            let hash = hash(&config);
            // Two cells that are the same run (`seed: [0, 0]`, or `1` and `1.0`) would share one
            // folder and one record: the grid names them instead of counting both.
            if let Some(&same) = seen.get(&hash) {
                let first: &Cell = &cells[same];
                return Err(Error::invalid(format!(
                    "the grid makes the same run twice ({} and {}): give each value once",
                    show(&first.values),
                    show(&values)
                )));
            }
            seen.insert(hash.clone(), cells.len());
            cells.push(Cell {
                index,
                hash,
                values,
                config,
            });
        }
        Ok(cells)
    }
}

/// `clone.nb=8, seed=0`.
pub fn show(values: &BTreeMap<String, Value>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every leaf of a configuration (as JSON) under its dotted path, as grid keys name them:
/// `tasks.0.train.beta`.
pub fn leaves(v: &Value) -> BTreeMap<String, Value> {
    fn walk(v: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, join(k), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, join(&i.to_string()), out)),
            leaf => {
                out.insert(path, leaf.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// A configuration's content hash: SHA-256 of its canonical JSON (object keys sorted, no
/// whitespace), the first 16 hex digits.
pub fn hash(cfg: &RunConfig) -> String {
    let v = serde_json::to_value(cfg).expect("serialisable");
    let mut text = String::new();
    canonical(&v, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The configuration a JSON value describes, or an error naming the cell.
fn to_config(v: &Value, values: &BTreeMap<String, Value>) -> Result<RunConfig> {
    let bytes = serde_json::to_vec(v).expect("serialisable");
    parse_config(&bytes).map_err(|msg| {
        Error::invalid(format!(
            "the cell {}: {msg}: fix the grid's values",
            show(values)
        ))
    })
}

/// Check that `value` at `key` has the type the configuration wants there, with a message naming
/// the key, the value and the base's own value as an example.
fn typed(root: &Value, key: &str, value: &Value) -> Result<()> {
    let bytes = serde_json::to_vec(root).expect("serialisable");
    serde_json::from_slice::<RunConfig>(&bytes)
        .map(|_| ())
        .map_err(|e| {
            let msg = e.to_string();
            let why = msg.split(" at line").next().unwrap_or(&msg);
            Error::invalid(format!(
                "grid key '{}': the value {value} does not fit ({why}): give a value of the type config.json has there",
                key.escape_debug()
            ))
        })
}

/// Set `key` (a dotted path; a number indexes a list, `*` every element of one) in `root` to
/// `value`. The path must exist in the configuration: an unknown part is refused, naming the
/// closest known key.
fn set(root: &mut Value, key: &str, value: &Value, section: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "an empty key in \"{section}\": use a dotted path such as clone.nb"
        )));
    }
    let parts: Vec<&str> = key.split('.').collect();
    set_at(root, &parts, value, key, section)
}

fn set_at(node: &mut Value, parts: &[&str], value: &Value, key: &str, section: &str) -> Result<()> {
    let (head, rest) = (parts[0], &parts[1..]);
    let unknown = |known: Vec<String>| {
        let best = known
            .iter()
            .map(|k| (strsim::jaro_winkler(head, k), k))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .filter(|(s, _)| *s >= 0.7)
            .map(|(_, k)| format!("did you mean \"{k}\"? "))
            .unwrap_or_default();
        Error::invalid(format!(
            "unknown key '{}' in \"{section}\": the run configuration has no \"{}\" there; {best}(the keys there are {})",
            key.escape_debug(),
            head.escape_debug(),
            known.join(", ")
        ))
    };
    match node {
        Value::Object(m) => match m.get_mut(head) {
            Some(child) if rest.is_empty() => {
                *child = value.clone();
                Ok(())
            }
            Some(child) => set_at(child, rest, value, key, section),
            None => Err(unknown(m.keys().cloned().collect())),
        },
        Value::Array(a) => {
            let n = a.len();
            let targets: Vec<usize> = if head == "*" {
                (0..n).collect()
            } else {
                match head.parse::<usize>() {
                    Ok(i) if i < n => vec![i],
                    _ => {
                        return Err(Error::invalid(format!(
                            "key '{}' in \"{section}\": \"{}\" is not an element of a list of {n}: use 0 to {} or *",
                            key.escape_debug(),
                            head.escape_debug(),
                            n.saturating_sub(1)
                        )))
                    }
                }
            };
            for i in targets {
                if rest.is_empty() {
                    a[i] = value.clone();
                } else {
                    set_at(&mut a[i], rest, value, key, section)?;
                }
            }
            Ok(())
        }
        _ => Err(Error::invalid(format!(
            "key '{}' in \"{section}\": \"{}\" goes below a value that has no fields: shorten the key",
            key.escape_debug(),
            head.escape_debug()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grid(v: Value) -> Grid {
        serde_json::from_value(v).unwrap()
    }

    fn quick() -> RunConfig {
        RunConfig::preset("quick").unwrap()
    }

    /// `half_blocks`, which `config.json` leaves out when false, is a key a grid may sweep; its
    /// false cell is the base configuration itself (the same hash).
    #[test]
    fn a_setting_left_out_at_its_default_can_be_swept() {
        let g = grid(json!({"base": "quick", "grid": {"half_blocks": [false, true]}}));
        let cells = g.expand(&quick()).unwrap();
        assert_eq!(cells.len(), 2);
        assert!(!cells[0].config.half_blocks && cells[1].config.half_blocks);
        assert_eq!(cells[0].hash, hash(&quick()));
        assert_ne!(cells[1].hash, cells[0].hash);
        let e = grid(json!({"base": "quick", "grid": {"half_blocks": [1]}}))
            .expand(&quick())
            .unwrap_err()
            .to_string();
        assert!(e.contains("half_blocks"), "{e}");
    }

    #[test]
    fn a_grid_expands_to_every_combination_with_stable_hashes() {
        let g = grid(json!({"base": "quick", "fixed": {"train_n": 100},
                            "grid": {"seed": [0, 1], "clone.nb": [8, 9]}}));
        let cells = g.expand(&quick()).unwrap();
        assert_eq!(cells.len(), 4);
        assert!(cells.iter().all(|c| c.config.train_n == Some(100)));
        // Keys sorted, the last varying fastest: clone.nb, then seed.
        let got: Vec<(usize, u64)> = cells
            .iter()
            .map(|c| (c.config.clone.nb, c.config.seed))
            .collect();
        assert_eq!(got, vec![(8, 0), (8, 1), (9, 0), (9, 1)]);
        let hashes: Vec<&String> = cells.iter().map(|c| &c.hash).collect();
        let mut unique = hashes.clone();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert!(hashes.iter().all(|h| h.len() == 16));
        // The same grid again: the same hashes.
        let again = g.expand(&quick()).unwrap();
        assert_eq!(hashes, again.iter().map(|c| &c.hash).collect::<Vec<_>>());
        // One value changed: only the cells with it change.
        let g2 = grid(json!({"base": "quick", "fixed": {"train_n": 100},
                             "grid": {"seed": [0, 1], "clone.nb": [8, 7]}}));
        let changed = g2.expand(&quick()).unwrap();
        for (a, b) in cells.iter().zip(&changed) {
            assert_eq!(a.hash == b.hash, a.config.clone.nb == 8, "{:?}", a.values);
        }
        // The hash is of the configuration alone: the same cell written as a fixed value.
        let g3 = grid(
            json!({"base": "quick", "fixed": {"train_n": 100, "seed": 1},
                             "grid": {"clone.nb": [9]}}),
        );
        assert_eq!(g3.expand(&quick()).unwrap()[0].hash, cells[3].hash);
    }

    #[test]
    fn lists_are_indexed_or_starred() {
        let g = grid(
            json!({"base": "quick", "grid": {"tasks.*.train.epochs": [1, 2],
                                                       "tasks.0.train.beta": [10.0]}}),
        );
        let cells = g.expand(&quick()).unwrap();
        assert_eq!(cells.len(), 2);
        assert!(cells[1].config.tasks.iter().all(|t| t.train.epochs == 2));
        assert_eq!(cells[0].config.tasks[0].train.beta, 10.0);
    }

    #[test]
    fn bad_grids_name_the_problem_and_the_fix() {
        let err = |v: Value| grid(v).expand(&quick()).unwrap_err().to_string();
        let e = err(json!({"base": "quick", "grid": {"clone.nbb": [8]}}));
        assert!(
            e.contains("unknown key 'clone.nbb'") && e.contains("did you mean \"nb\""),
            "{e}"
        );
        let e = err(json!({"base": "quick", "grid": {"seed": []}}));
        assert!(e.contains("grid key 'seed' has an empty list"), "{e}");
        let e = err(json!({"base": "quick", "grid": {"seed": [0, 0], "clone.nb": [8, 9]}}));
        assert!(
            e.contains("the same run twice (clone.nb=8, seed=0 and clone.nb=8, seed=0)"),
            "{e}"
        );
        let e = err(json!({"base": "quick", "grid": {"clone.nb": ["eight"]}}));
        assert!(
            e.contains("grid key 'clone.nb'") && e.contains("\"eight\""),
            "{e}"
        );
        let e = err(json!({"base": "quick", "grid": {"clone.nb": [0]}}));
        assert!(
            e.contains("clone blocks 0") && e.contains("clone.nb=0"),
            "{e}"
        );
        let e = err(json!({"base": "quick", "grid": {"tasks.9.train.epochs": [1]}}));
        assert!(e.contains("not an element of a list of 3"), "{e}");
        let e = err(json!({"base": "quick", "grid": {}}));
        assert!(e.contains("sweeps no key"), "{e}");
        let e = err(json!({"base": "quick", "fixed": {"seed.x": 1}, "grid": {"seed": [0]}}));
        assert!(e.contains("no fields"), "{e}");
        let bad = serde_json::from_value::<Grid>(json!({"base": "quick", "grids": {}}));
        assert!(bad.is_err());
    }
}
