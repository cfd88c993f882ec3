// SPDX-License-Identifier: GPL-2.0

//! An interrupt-safe spinlock, for data that completions touch in interrupt context.
//!
//! 7.3's `kernel` crate has one: `kernel::sync::SpinLockIrq`, used as is. 7.2's has
//! none, so there the same names stand for a [`Lock`] over a `spinlock_t` taken with
//! `spin_lock_irqsave`. Either way the driver writes `SpinLockIrq<T>`,
//! `new_spinlock_irq!(value)` and `lock()`.
//!
//! [`Lock`]: kernel::sync::lock::Lock

#[cfg(rl_kernel_ge_7_3)]
pub(crate) use kernel::sync::{new_spinlock_irq, SpinLockIrq};

#[cfg(not(rl_kernel_ge_7_3))]
pub(crate) use irqsave::{new_spinlock_irq, SpinLockIrq};

#[cfg(not(rl_kernel_ge_7_3))]
mod irqsave {
    use crate::kapi::helpers::*;
    use kernel::{bindings, ffi::c_ulong, sync::lock::Backend};

    /// A `spinlock_t` held with local interrupts disabled: what 7.3 calls
    /// `SpinLockIrq`.
    pub(crate) type SpinLockIrq<T> = kernel::sync::lock::Lock<T, IrqSaveBackend>;

    /// Creates a [`SpinLockIrq`] initialiser with a new lock class, named after the
    /// source location unless a name is given (like 7.3's macro of the same name).
    macro_rules! new_spinlock_irq {
        ($inner:expr $(, $name:literal)? $(,)?) => {
            $crate::kapi::sync::SpinLockIrq::new(
                $inner,
                ::kernel::optional_name!($($name)?),
                ::kernel::static_lock_class!(),
            )
        };
    }
    pub(crate) use new_spinlock_irq;

    /// `spin_lock_irqsave` / `spin_unlock_irqrestore` on a `spinlock_t`.
    ///
    /// The guard keeps the saved interrupt flags, so guards of two such locks must
    /// be dropped in the reverse order of locking (the driver never holds two).
    pub(crate) struct IrqSaveBackend;

    // SAFETY: `spinlock_t` gives mutual exclusion between `lock` and `unlock`; local
    // interrupts stay disabled in between, so an interrupt handler on this CPU cannot
    // spin on the lock its own CPU holds. `relock` is the default (`lock` again).
    unsafe impl Backend for IrqSaveBackend {
        type State = bindings::spinlock_t;
        type GuardState = c_ulong;

        unsafe fn init(
            ptr: *mut Self::State,
            name: *const kernel::ffi::c_char,
            key: *mut bindings::lock_class_key,
        ) {
            // SAFETY: By the trait's contract `ptr` is valid for write and `name` and
            // `key` stay valid for read indefinitely.
            unsafe { bindings::__spin_lock_init(ptr, name, key) }
        }

        unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
            // SAFETY: By the trait's contract `init` was called on `ptr`.
            unsafe { rust_loop_spin_lock_irqsave(ptr) }
        }

        unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
            let mut flags: c_ulong = 0;
            // SAFETY: By the trait's contract `init` was called on `ptr`; `flags` is a
            // local the helper writes the saved interrupt state to.
            let locked = unsafe { rust_loop_spin_trylock_irqsave(ptr, &mut flags) };
            locked.then_some(flags)
        }

        unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
            // SAFETY: By the trait's contract the caller owns the lock, taken by `lock`
            // or `try_lock`, which returned `guard_state`.
            unsafe { rust_loop_spin_unlock_irqrestore(ptr, *guard_state) }
        }

        unsafe fn assert_is_held(ptr: *mut Self::State) {
            // SAFETY: By the trait's contract `init` was called on `ptr`.
            unsafe { bindings::spin_assert_is_held(ptr) }
        }
    }
}
