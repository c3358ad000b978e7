/*
 * host/testing/epoll.c: the host's epoll backend compiled into
 * libioloop_testing for IOLOOP_TESTING_EPOLL, under a private name so that
 * the library exports no ioloop_backend_v1 of its own.
 */
#define ioloop_backend_v1 ioloop__testing_epoll
#include "../../backends/epoll.c"
