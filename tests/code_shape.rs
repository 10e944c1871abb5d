//! The shape of the code, kept by a test so that it stays as docs/architecture.md
//! describes it: no production file of a library crate over 600 lines, no file of
//! the binary (src/) over 400, unless the file says at its top why it is longer.
//! (Functions over 70 lines are refused by clippy's `too_many_lines`, see clippy.toml.)

use std::path::{Path, PathBuf};

/// Longest production file of a library crate, in lines (inline test modules count).
const MAX_LIBRARY_FILE_LINES: usize = 600;
/// Longest file of the binary, in lines: it only parses arguments and prints.
const MAX_BINARY_FILE_LINES: usize = 400;
/// A file longer than its limit must carry this marker in its first lines, followed by the reason.
const LONG_FILE_MARKER: &str = "This file is long because";
/// How many lines from the top the marker may appear in.
const MARKER_WITHIN_LINES: usize = 20;

fn rust_files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files_under(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every crate's `src/` folder: the production code. Tests (`tests/`) are not limited.
fn production_folders(root: &Path) -> Vec<(PathBuf, usize)> {
    let mut folders = vec![(root.join("src"), MAX_BINARY_FILE_LINES)];
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("the workspace manifest is readable");
    let members: toml::Table = manifest.parse().expect("the workspace manifest is TOML");
    let members = members["workspace"]["members"]
        .as_array()
        .expect("the workspace lists its members");
    for member in members {
        let name = member.as_str().expect("a member is a path");
        folders.push((root.join(name).join("src"), MAX_LIBRARY_FILE_LINES));
    }
    folders
}

#[test]
fn no_production_file_is_longer_than_its_limit_without_saying_why() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut too_long = Vec::new();
    let mut checked = 0;
    for (folder, max_lines) in production_folders(root) {
        let mut files = Vec::new();
        rust_files_under(&folder, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file is readable");
            checked += 1;
            let lines = text.lines().count();
            let says_why = text
                .lines()
                .take(MARKER_WITHIN_LINES)
                .any(|line| line.contains(LONG_FILE_MARKER));
            if lines > max_lines && !says_why {
                too_long.push(format!("{} ({lines} lines, limit {max_lines})", file.display()));
            }
        }
    }
    assert!(checked > 20, "the walk found the sources ({checked} files)");
    assert!(
        too_long.is_empty(),
        "split these files, or say at the top \"{LONG_FILE_MARKER} ...\":\n{}",
        too_long.join("\n")
    );
}
