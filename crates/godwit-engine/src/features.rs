//! What each kind of store can do. The engine asks these instead of matching on the kind.

use godwit_spec::StoreKind;

/// What a kind of store can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// A write appears at its final name only when complete (object stores publish an object,
    /// or complete a multipart upload, at the end). Without it godwit writes a temporary name
    /// in its run's temporary folder (`backend::temp_dir_name`) and renames it.
    pub atomic_write: bool,
    /// A file can be renamed in place (a move at the source is a rename at the target).
    pub rename: bool,
    /// A file can be copied by the store itself, without sending its bytes again.
    pub server_side_copy: bool,
    /// Arbitrary user metadata is kept with a file (where godwit records modification times).
    pub user_metadata: bool,
    /// Modification times can be set, and are listed back as set.
    pub set_mtime: bool,
    /// Folders exist by themselves and can be listed one at a time.
    pub real_folders: bool,
    /// Symbolic links can be made.
    pub links: bool,
    /// Files are reached through the kernel (copy_file_range, fstatat), not an async client.
    pub local: bool,
}

impl Features {
    /// The features of a kind of store.
    pub fn of(kind: StoreKind) -> Features {
        let none = Features {
            atomic_write: false,
            rename: false,
            server_side_copy: false,
            user_metadata: false,
            set_mtime: false,
            real_folders: false,
            links: false,
            local: false,
        };
        match kind {
            StoreKind::Local => Features {
                rename: true,
                set_mtime: true,
                real_folders: true,
                links: true,
                local: true,
                ..none
            },
            StoreKind::Sftp => Features {
                rename: true,
                real_folders: true,
                ..none
            },
            StoreKind::S3 | StoreKind::AzureBlob => Features {
                atomic_write: true,
                server_side_copy: true,
                user_metadata: true,
                ..none
            },
            // What OpenDAL's memory service does (tests/behaviour.rs checks it).
            StoreKind::Memory => Features {
                atomic_write: true,
                ..none
            },
        }
    }
}
