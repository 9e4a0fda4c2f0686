/* acceptor.h - the TLS listener's own accept thread, handing connections to libmicrohttpd. */
#ifndef TOPOWIRE_WEBHOOK_ACCEPTOR_H
#define TOPOWIRE_WEBHOOK_ACCEPTOR_H

#include <stdbool.h>
#include <sys/socket.h>

#include <microhttpd.h>

typedef struct hook_acceptor hook_acceptor;

/*
 * Listens on ss (any: every address, IPv6 and IPv4 where the host has both, on
 * port) and starts a thread that accepts connections and gives each to d with
 * MHD_add_connection(). d runs a thread pool without a listen socket of its own
 * (MHD_USE_NO_LISTEN_SOCKET): libmicrohttpd then places each added connection
 * on the worker its descriptor number points to, so a burst of connections is
 * spread evenly over the workers, where workers racing for one shared listen
 * socket leave most connections with whichever thread wakes first.
 * (libmicrohttpd 0.9.75's header says a thread pool is ignored without a listen
 * socket; that version builds and uses it all the same, and its connection
 * limit applies to added connections. tests/integration/spread.sh
 * fails should a version put every connection on one worker.)
 * libmicrohttpd does not run its accept policy for added connections, so the
 * acceptor asks admit (when not NULL) about each one first and closes those it
 * refuses at once. Borrows d and admit_cls, which must outlive the acceptor.
 * Returns 0 and a new acceptor in *out (free with hook_acceptor_stop()), or
 * TW_EIO with a sentence in err.
 */
typedef bool (*hook_acceptor_admit_fn)(void *cls, const struct sockaddr *addr);
int hook_acceptor_start(const struct sockaddr_storage *ss, int any, int port, struct MHD_Daemon *d,
                        hook_acceptor_admit_fn admit, void *admit_cls, hook_acceptor **out,
                        char *err);

/* The port the acceptor listens on. */
int hook_acceptor_port(const hook_acceptor *a);

/*
 * Stops accepting: the thread ends and the listen socket is closed, so new
 * connections are refused; connections already handed over stay with the
 * daemon. Frees a; NULL is fine.
 */
void hook_acceptor_stop(hook_acceptor *a);

#endif
