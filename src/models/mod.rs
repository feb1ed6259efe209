//! Models: the registry of known models, where their files come from, their verification, and the
//! network architectures that run them.

pub mod arch;
pub mod bundled;
pub mod gguf;
pub mod registry;
pub mod store;
pub mod verify;

pub use registry::{Architecture, ModelEntry, Pooling, Registry, Role, Source, WindowUnit};
pub use store::{ModelStore, ResolvedModel};
