//! The property-test twins of the fuzz targets (`tests/fuzz`): the same properties
//! (`tests/fuzzing/mod.rs`), run under stable `cargo test` on the committed corpus and on
//! seeded mutations of it. `CAUCE_TWIN_CASES` sets the mutations per target (default 20,000),
//! `CAUCE_TWIN_SEED` replays a run (each run prints its seed).

mod fuzzing;

use std::path::Path;

/// Pieces that JSON parsers trip on, spliced into inputs.
const TOKENS: &[&str] = &[
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    "\\u0000",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-0",
    "1e999",
    "-1e-999",
    "9223372036854775808",
    "0.0000001",
    "\"batch\":",
    "\"sent_at\":",
    "\"Records\":",
    "\"S\":",
    "\"doc\":",
    "\"NewImage\":",
    "\"timestamp\":",
    "\"updated_at\":",
    "\"steps\":",
    "\"extra\":",
    "\u{7f}",
    "\u{feff}",
    "\t",
];

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One to four random edits of `input`, some of it from `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = at.min(out.len() - 1);
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            2 => {
                let end = (at + rng.below(64)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + rng.below(256)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
        }
    }
    out
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(inputs.len() >= 5, "{target}: a corpus to start from");
    inputs
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `property` on the corpus of `target`, then on mutations of it.
fn twin(target: &str, property: fn(&[u8])) {
    let inputs = corpus(target);
    for input in &inputs {
        property(input);
    }
    let seed = setting("CAUCE_TWIN_SEED", cauce_store::time::now_ms() as u64) | 1;
    println!("{target}: CAUCE_TWIN_SEED={seed}");
    let mut rng = Rng(seed);
    for case in 0..setting("CAUCE_TWIN_CASES", 20_000) {
        let a = &inputs[rng.below(inputs.len())];
        let b = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, a, b);
        let result = std::panic::catch_unwind(|| property(&input));
        if let Err(e) = result {
            let path = std::env::temp_dir().join(format!("{target}-crash-{seed}-{case}"));
            std::fs::write(&path, &input).unwrap();
            panic!(
                "{target}: case {case} fails (input in {}): {e:?}",
                path.display()
            );
        }
    }
}

#[test]
fn the_request_validator_keeps_its_properties() {
    twin("request", fuzzing::request);
}

#[test]
fn the_stream_scanner_agrees_with_serde_json() {
    twin("stream_scan", fuzzing::stream_scan);
}
