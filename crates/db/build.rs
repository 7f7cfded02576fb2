//! `sqlx::migrate!` embeds the migration folders at compile time; a new or edited migration
//! file must rebuild the crate, or it would be silently missing until something else changed.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
