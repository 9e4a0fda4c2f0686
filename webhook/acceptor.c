/* acceptor.c - the TLS listener's own accept thread, handing connections to libmicrohttpd. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "acceptor.h"
#include "topowire/error.h"
#include "topowire/log.h"

struct hook_acceptor {
    int fd;      /* the listen socket */
    int wake[2]; /* a byte on wake[1] ends the thread */
    int port;
    struct MHD_Daemon *d;
    hook_acceptor_admit_fn admit;
    void *admit_cls;
    pthread_t thread;
};

/* A listening, non-blocking socket on addr, or -1 with errno set. */
static int listen_on(const struct sockaddr *addr, socklen_t len, int v6only)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (addr->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) != 0) ||
        bind(fd, addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void *accept_thread(void *arg)
{
    hook_acceptor *a = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = a->fd, .events = POLLIN},
                              {.fd = a->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents != 0)
            break;
        for (;;) {
            struct sockaddr_storage peer;
            socklen_t len = sizeof(peer);
            int c = accept4(a->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    /* Out of descriptors or memory: leave the rest in the backlog a while. */
                    tw_log_kv(TW_LOG_WARN, "cannot accept a connection", "error", strerror(errno),
                              NULL);
                    struct timespec ts = {0, 100 * 1000 * 1000};
                    nanosleep(&ts, NULL);
                }
                break; /* EAGAIN, or a connection that went away: poll again */
            }
            /* libmicrohttpd owns c from here, and closes it itself when it refuses it (at the
             * connection limit, say; its log says why). */
            if (a->admit != NULL && !a->admit(a->admit_cls, (struct sockaddr *)&peer)) {
                close(c); /* refused at once, never left waiting */
                continue;
            }
            (void)MHD_add_connection(a->d, c, (struct sockaddr *)&peer, len);
        }
    }
    return NULL;
}

int hook_acceptor_start(const struct sockaddr_storage *ss, int any, int port, struct MHD_Daemon *d,
                        hook_acceptor_admit_fn admit, void *admit_cls, hook_acceptor **out,
                        char *err)
{
    hook_acceptor *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return TW_ENOMEM;
    a->fd = a->wake[0] = a->wake[1] = -1;
    a->d = d;
    a->admit = admit;
    a->admit_cls = admit_cls;
    if (any) {
        /* IPv6 and IPv4 on one socket where the host has IPv6, else IPv4 alone. */
        struct sockaddr_in6 six = {
            .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
        struct sockaddr_in four = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_ANY)};
        a->fd = listen_on((struct sockaddr *)&six, sizeof(six), 0);
        if (a->fd < 0 && errno == EAFNOSUPPORT)
            a->fd = listen_on((struct sockaddr *)&four, sizeof(four), 0);
    } else {
        socklen_t len =
            ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        a->fd = listen_on((const struct sockaddr *)ss, len, 1);
    }
    int rc = TW_OK;
    if (a->fd < 0) {
        rc = tw_seterr(err, TW_EIO, "cannot listen on port %d: %s", port, strerror(errno));
        goto fail;
    }
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } bound;
    memset(&bound, 0, sizeof(bound));
    socklen_t blen = sizeof(bound);
    if (getsockname(a->fd, &bound.sa, &blen) != 0) {
        rc = tw_seterr(err, TW_EIO, "cannot read the listen address: %s", strerror(errno));
        goto fail;
    }
    a->port = ntohs(bound.sa.sa_family == AF_INET6 ? bound.in6.sin6_port : bound.in.sin_port);
    if (pipe2(a->wake, O_CLOEXEC) != 0 || pthread_create(&a->thread, NULL, accept_thread, a) != 0) {
        rc = tw_seterr(err, TW_EIO, "cannot start the accept thread");
        goto fail;
    }
    *out = a;
    return TW_OK;
fail:
    if (a->fd >= 0)
        close(a->fd);
    if (a->wake[0] >= 0) {
        close(a->wake[0]);
        close(a->wake[1]);
    }
    free(a);
    return rc;
}

int hook_acceptor_port(const hook_acceptor *a)
{
    return a->port;
}

void hook_acceptor_stop(hook_acceptor *a)
{
    if (a == NULL)
        return;
    char b = 0;
    while (write(a->wake[1], &b, 1) < 0 && errno == EINTR)
        ;
    pthread_join(a->thread, NULL);
    close(a->fd);
    close(a->wake[0]);
    close(a->wake[1]);
    free(a);
}
