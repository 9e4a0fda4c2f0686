/* cli.h - the programs' command-line flags: one table per command, parsed over getopt_long. */
#ifndef TOPOWIRE_CLI_H
#define TOPOWIRE_CLI_H

#include <stddef.h>

#include "topowire/log.h"

/*
 * A command describes its flags as a table; tw_flags_parse fills the targets
 * and prints every usage error the same way for both programs:
 *   topowire-init: --timeout: "ten" is not a duration such as 10s or 500ms
 *   Try 'topowire-init --help'.
 * Later occurrences of a flag override earlier ones. Targets are written only
 * when their argument parses.
 */
typedef enum tw_flag_kind {
    TW_FLAG_STRING,   /* const char **: the argument, borrowed from argv */
    TW_FLAG_SET,      /* int *: set to 1; the flag takes no argument */
    TW_FLAG_BOOL,     /* int *: "true" or "false" */
    TW_FLAG_COUNT,    /* unsigned *: a decimal number from 0 to max */
    TW_FLAG_SECONDS,  /* unsigned *: whole seconds from 0 to max, "30" or "30s" */
    TW_FLAG_DURATION, /* long *: milliseconds above 0, as tw_duration_parse ("2s", "500ms") */
    TW_FLAG_CALL,     /* parse(target, argument, ...) */
    TW_FLAG_HELP,     /* no argument: tw_flags_parse returns TW_FLAGS_HELP */
    TW_FLAG_VERSION,  /* no argument: tw_flags_parse returns TW_FLAGS_VERSION */
} tw_flag_kind;

/*
 * A TW_FLAG_CALL parser: TW_OK, or TW_EINVAL with why completing the sentence
 * `--flag: "argument" <why>` ("is not text or json"), or TW_ENOMEM.
 */
typedef int (*tw_flag_fn)(void *target, const char *arg, char *why, size_t why_len);

typedef struct tw_flag {
    const char *name; /* without the leading "--" */
    tw_flag_kind kind;
    unsigned max; /* TW_FLAG_COUNT and TW_FLAG_SECONDS */
    void *target;
    tw_flag_fn parse; /* TW_FLAG_CALL */
} tw_flag;

enum tw_flags_result {
    TW_FLAGS_USAGE = -1,  /* a usage error, already printed to stderr */
    TW_FLAGS_GO = 0,      /* every flag parsed: go on */
    TW_FLAGS_HELP = 1,    /* --help was given: print the usage to stdout and exit 0 */
    TW_FLAGS_VERSION = 2, /* --version was given */
};

/*
 * Parses argv[1..argc-1] (argv[0] is the program or the subcommand) against
 * the n flags; a positional argument is a usage error. prog names the command
 * in messages ("topowire-webhook serve"). Not thread-safe (getopt).
 */
int tw_flags_parse(const char *prog, const tw_flag *flags, size_t n, int argc, char **argv);

/* TW_FLAG_CALL parsers shared by the programs. */
int tw_flag_log_format(void *target /* tw_log_format */, const char *arg, char *why,
                       size_t why_len);
int tw_flag_log_level(void *target /* tw_log_level */, const char *arg, char *why, size_t why_len);

/* At most this many keys in a list of label keys. */
#define TW_LABEL_KEYS_MAX 16

/* A list of label keys from a flag ("a,b"): NULL-terminated, strings owned by the list. */
typedef struct tw_label_keys {
    char *keys[TW_LABEL_KEYS_MAX + 1];
} tw_label_keys;

/*
 * A TW_FLAG_CALL parser for tw_label_keys: a comma list of 1 to
 * TW_LABEL_KEYS_MAX valid label keys, no empty item. Replaces the list's keys.
 */
int tw_flag_label_keys(void *target /* tw_label_keys */, const char *arg, char *why,
                       size_t why_len);

/* Frees the list's keys. */
void tw_label_keys_free(tw_label_keys *k);

#endif
