/*
 * WebSocket server frame headers (RFC 6455: server frames are unmasked), built by the
 * gateway so that a message is framed once and the same bytes go to every subscriber.
 */
#ifndef RG_WIRE_H
#define RG_WIRE_H

#include <stddef.h>

#define RG_WS_HEADER_MAX 10

/* Writes the header of a final text frame of payload_len bytes to out
 * (RG_WS_HEADER_MAX bytes available); returns its length: 2, 4 or 10. */
size_t rg_ws_text_header(unsigned char *out, size_t payload_len);

#endif
