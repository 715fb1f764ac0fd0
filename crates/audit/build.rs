//! `sqlx::migrate!` embeds the migrations at compile time; a new migration file must
//! rebuild this crate, which Cargo does not know without this line.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
