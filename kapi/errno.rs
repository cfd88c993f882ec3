// SPDX-License-Identifier: GPL-2.0

//! Error codes that 7.3's `kernel::error::code` declares and 7.2's lacks.
//!
//! Functions rather than constants: 7.2's `kernel` crate offers no `const` way to
//! make an [`Error`] from an errno outside the crate (only `Error::from_errno`).

use kernel::prelude::*;

#[cfg(rl_kernel_ge_7_3)]
macro_rules! errno {
    ($($(#[$m:meta])* $f:ident => $e:ident;)*) => {$(
        $(#[$m])*
        #[inline]
        pub(crate) fn $f() -> Error {
            kernel::error::code::$e
        }
    )*};
}

#[cfg(not(rl_kernel_ge_7_3))]
macro_rules! errno {
    ($($(#[$m:meta])* $f:ident => $e:ident;)*) => {$(
        $(#[$m])*
        #[inline]
        pub(crate) fn $f() -> Error {
            Error::from_errno(-(kernel::bindings::$e as i32))
        }
    )*};
}

errno! {
    /// `ENAMETOOLONG`.
    enametoolong => ENAMETOOLONG;
    /// `ENOSYS`.
    enosys => ENOSYS;
    /// `EOPNOTSUPP`.
    eopnotsupp => EOPNOTSUPP;
}
