/* kubeconfig_int.h - kubeconfig.c's tw__ hooks for its unit tests and fuzzer; not public API. */
#ifndef TOPOWIRE_KUBECONFIG_INT_H
#define TOPOWIRE_KUBECONFIG_INT_H

#include <stddef.h>

#include "topowire/kubeconfig.h"

/* Never open a file the kubeconfig names (client-certificate, client-key): fail instead. */
#define TW__KUBECONFIG_NO_FILES 1u

/*
 * Parses a kubeconfig held in memory: text is len bytes of YAML or JSON (not
 * necessarily NUL-terminated; at most 4 MiB), name is what error messages
 * call it (the file's path), dir the directory relative paths are resolved
 * against (NULL leaves them as written), context as for tw_kube_config_load.
 * Nothing is run: an exec plugin is only described in the result. Files the
 * config names are read now unless flags holds TW__KUBECONFIG_NO_FILES.
 * Returns 0 and a new config in *out (free with tw_kube_config_free; out is
 * written only on success), or the codes of tw_kube_config_load except
 * TW_ENOCONFIG. Borrows every argument.
 */
int tw__kube_config_parse(const char *text, size_t len, const char *name, const char *dir,
                          const char *context, unsigned flags, tw_kube_config **out, char *err);

#endif
