/*
 * host/runtime/http_date.c: the Date header of the responses (RFC 9110
 * IMF-fixdate), formatted once a second per loop.
 */
#include "http_internal.h"

#include <stdio.h>

void
ioloop__http_date_refresh(struct http_loop *hl)
{
    static const char days[7][4] = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
    };
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
    };
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (now == hl->date_sec || gmtime_r(&now, &tm) == NULL) {
        return;
    }
    n = snprintf(hl->date, sizeof(hl->date),
                 "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n > 0 && (size_t) n < sizeof(hl->date)) {
        hl->date_len = (size_t) n;
        hl->date_sec = now;
    }
}
