//! What the panic tests share: a value whose `Display` panics, as a field's formatting
//! can while a layer records it.

/// Panics when formatted.
pub struct Boom;

impl std::fmt::Display for Boom {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("a Display that panics")
    }
}
