//! Prints the compiler's coverage per agreement and the unsupported rule sets:
//! `cargo run -p steward-origin --example coverage`.

fn main() -> Result<(), steward_origin::Error> {
    let engine = steward_origin::Engine::load()?;
    print!("{}", steward_origin::render::coverage(&engine.coverage()));
    Ok(())
}
