//! Every dereference of a pointer that came from C, in one place.
//!
//! This is the only module of the crate with `unsafe` blocks (the exports
//! in `api.rs` use `unsafe` only for `#[unsafe(no_mangle)]`; the test
//! `tests/header.rs` checks that no other file has an `unsafe` block or
//! function). Each helper states what it relies on: the contract written in
//! `include/pollhttp.h`, which a C caller keeps (a non-NULL pointer points
//! to what its type says, live for the call; a `len` is the length of the
//! memory at `data`; a handle was made by this library and not freed).
//! Everything a C caller can get wrong *without* breaking that contract
//! (NULL, invalid UTF-8, a CR/LF in a header, an unknown id, a double free
//! of a completion, which is an id) is checked here or in `api.rs` and
//! answered with an error code.
#![allow(unsafe_code)]

use std::ffi::{c_char, CStr};

use crate::error::{Code, PH_ERR_NULL, PH_ERR_UTF8};

/// The C string at `ptr` as UTF-8.
///
/// # Errors
/// `PH_ERR_NULL` for NULL, `PH_ERR_UTF8` when the bytes before the NUL are
/// not UTF-8.
pub(crate) fn str_arg<'a>(ptr: *const c_char) -> Result<&'a str, Code> {
    if ptr.is_null() {
        return Err(PH_ERR_NULL);
    }
    // SAFETY: non-NULL; the header's contract: a `const char *` argument is
    // a NUL-terminated string that stays unchanged for the call (the result
    // is used within the call only: callers copy what they keep).
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| PH_ERR_UTF8)
}

/// The `len` bytes at `data` (`data` may be NULL when `len` is 0).
///
/// # Errors
/// `PH_ERR_NULL` for NULL with a non-zero `len`.
pub(crate) fn bytes_arg<'a>(data: *const u8, len: usize) -> Result<&'a [u8], Code> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(PH_ERR_NULL);
    }
    if len > isize::MAX as usize {
        return Err(crate::error::PH_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, `len` fits `isize`; the header's contract: `data`
    // points to `len` readable bytes unchanged for the call (the slice is
    // copied before the call returns).
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// The writable buffer of `cap` bytes at `data` (NULL allowed when `cap`
/// is 0).
///
/// # Errors
/// `PH_ERR_NULL` for NULL with a non-zero `cap`.
pub(crate) fn buf_arg<'a>(data: *mut u8, cap: usize) -> Result<&'a mut [u8], Code> {
    if cap == 0 {
        return Ok(&mut []);
    }
    if data.is_null() {
        return Err(PH_ERR_NULL);
    }
    if cap > isize::MAX as usize {
        return Err(crate::error::PH_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, `cap` fits `isize`; the header's contract: `data`
    // points to `cap` writable bytes that nothing else reads or writes
    // during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(data, cap) })
}

/// Write `value` through an out-pointer.
///
/// # Errors
/// `PH_ERR_NULL` for NULL (nothing written).
pub(crate) fn write_out<T>(out: *mut T, value: T) -> Result<(), Code> {
    if out.is_null() {
        return Err(PH_ERR_NULL);
    }
    // SAFETY: non-NULL; the header's contract: an out-pointer points to
    // writable memory of its type (`write` does not read or drop the old
    // value, which may be uninitialised; every `T` here is `Copy`).
    unsafe { out.write(value) };
    Ok(())
}

/// Write `value` through an out-pointer the header calls optional (NULL:
/// the value is not wanted).
pub(crate) fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: as in `write_out`.
        unsafe { out.write(value) };
    }
}

/// A new handle for C: the box's pointer, owned by C until it gives it
/// back to [`free_handle`].
pub(crate) fn new_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// The object behind a handle, for one call.
///
/// # Errors
/// `PH_ERR_NULL` for NULL.
pub(crate) fn handle_mut<'a, T>(ptr: *mut T) -> Result<&'a mut T, Code> {
    if ptr.is_null() {
        return Err(PH_ERR_NULL);
    }
    // SAFETY: non-NULL; the header's contract: a handle was returned by
    // this library's `*_new` (a `Box::into_raw`), is not freed, and is used
    // by one thread at a time, so this is the only reference for the call.
    Ok(unsafe { &mut *ptr })
}

/// The object behind a handle, shared (a handle several threads may use at
/// once, such as a `PhWake`).
///
/// # Errors
/// `PH_ERR_NULL` for NULL.
pub(crate) fn handle_ref<'a, T>(ptr: *const T) -> Result<&'a T, Code> {
    if ptr.is_null() {
        return Err(PH_ERR_NULL);
    }
    // SAFETY: non-NULL; the header's contract: a handle returned by this
    // library and not freed (`T` is `Sync` where the header allows sharing).
    Ok(unsafe { &*ptr })
}

/// Take a handle back from C and drop it. NULL is a no-op.
pub(crate) fn free_handle<T>(ptr: *mut T) -> Option<Box<T>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the header's contract: a handle returned by this library's
    // `*_new` (`Box::into_raw` of a `Box<T>`), given back once; C never uses
    // it again.
    Some(unsafe { Box::from_raw(ptr) })
}
