// The migrations are embedded by `sqlx::migrate!`, which cargo does not know reads the
// folder: without this a new migration would not reach a build that is already cached.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
