/* assert.h - TW_ASSERT: invariants checked in the sanitizer and debug builds. */
#ifndef TOPOWIRE_ASSERT_H
#define TOPOWIRE_ASSERT_H

/*
 * TW_ASSERT(cond) states an invariant of the code, never a check of input:
 * a table index in range, a state the machine can be in. In builds with
 * AddressSanitizer or ThreadSanitizer (make SAN=1, make TSAN=1, the fuzzers:
 * so in every `make test`) or with -DTW_DEBUG, a false condition prints the
 * condition, file, line and function to stderr and aborts. In release builds the
 * condition is not evaluated (it must have no side effect) and code after it
 * must still behave safely: an assertion documents, the surrounding code
 * defends.
 */
#if defined(__has_feature) /* clang says "sanitizer on" this way; gcc by the macros below */
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TW__SANITIZED 1
#endif
#endif
#if defined(TW_DEBUG) || defined(TW__SANITIZED) || defined(__SANITIZE_ADDRESS__) ||                \
    defined(__SANITIZE_THREAD__)
#define TW_ASSERT_ON    1
#define TW_ASSERT(cond) ((cond) ? (void)0 : tw__assert_fail(#cond, __FILE__, __LINE__, __func__))
#else
#define TW_ASSERT_ON    0
/* Never evaluated, but its names count as used. */
#define TW_ASSERT(cond) ((void)(0 && (cond)))
#endif

/* Reports a failed TW_ASSERT and aborts. */
_Noreturn void tw__assert_fail(const char *cond, const char *file, int line, const char *func);

#endif
