/*
 * The simulated container runtime's pod network: a pod process's TCP connections come from
 * its own pod IP, as on a real node.
 *
 * The local cluster's pod IPs are loopback addresses (127.64.0.0/16), all on this machine's
 * one network. For a loopback destination the kernel picks 127.0.0.1 as the source, so every
 * pod would reach every other (the ensemble service, the lead broker) from 127.0.0.1 and no
 * server could tell its callers apart. Loaded with LD_PRELOAD into a pod's processes, this
 * wraps libc's connect(): a TCP socket not bound yet that connects to a loopback address is
 * first bound to $POD_IP (port 0: the kernel picks the port at connect, as it would). Python's
 * socket module, grpcio's C core and zeromq (Flux brokers) all connect through libc.
 *
 * IPv4 sockets, and IPv6 sockets connecting to an IPv4-mapped address (grpcio's dual-stack
 * sockets), are covered; anything else (other destinations, bound sockets, UDP, no $POD_IP)
 * is connected unchanged. Built by hack/build-podaddress.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

static connect_fn real_connect;
static struct in_addr pod_ip;
static int have_pod_ip;

__attribute__((constructor)) static void podaddress_init(void) {
    real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
    const char *value = getenv("POD_IP");
    have_pod_ip = value != NULL && inet_pton(AF_INET, value, &pod_ip) == 1;
}

static int is_loopback_v4(const struct in_addr *address) {
    return (ntohl(address->s_addr) >> 24) == 127;
}

/* The IPv4 destination of addr (plain or IPv4-mapped IPv6), or NULL when it has none. */
static const struct in_addr *ipv4_destination(const struct sockaddr *addr, socklen_t len) {
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in))
        return &((const struct sockaddr_in *)addr)->sin_addr;
    if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(v6))
            return (const struct in_addr *)&v6->s6_addr[12];
    }
    return NULL;
}

/* True when fd is a stream socket with no local address yet (a client about to connect). */
static int unbound_stream(int fd, int family) {
    int type = 0;
    socklen_t type_len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 || type != SOCK_STREAM)
        return 0;
    struct sockaddr_storage local;
    socklen_t local_len = sizeof(local);
    memset(&local, 0, sizeof(local));
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) != 0 || local.ss_family != family)
        return 0;
    if (family == AF_INET)
        return ((struct sockaddr_in *)&local)->sin_port == 0;
    return ((struct sockaddr_in6 *)&local)->sin6_port == 0;
}

static void bind_to_pod_ip(int fd, int family) {
    int on = 1;
    /* Reserve the port at connect() time, by the full 4-tuple, as an unbound socket would. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof(on));
    if (family == AF_INET) {
        struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = 0, .sin_addr = pod_ip};
        bind(fd, (struct sockaddr *)&local, sizeof(local));
    } else {
        struct sockaddr_in6 local = {.sin6_family = AF_INET6, .sin6_port = 0};
        local.sin6_addr.s6_addr[10] = 0xff;
        local.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&local.sin6_addr.s6_addr[12], &pod_ip, sizeof(pod_ip));
        bind(fd, (struct sockaddr *)&local, sizeof(local));
    }
    /* A failed bind leaves the socket as it was: it connects from the kernel's choice. */
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    if (real_connect == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (have_pod_ip && addr != NULL) {
        const struct in_addr *destination = ipv4_destination(addr, len);
        if (destination != NULL && is_loopback_v4(destination)) {
            int saved = errno;
            if (unbound_stream(fd, addr->sa_family))
                bind_to_pod_ip(fd, addr->sa_family);
            errno = saved;
        }
    }
    return real_connect(fd, addr, len);
}
