// Package frame writes and reads the length-prefixed frames trustreg's
// libp2p protocols exchange: the cluster's (consensus) and the
// checkpoint cosigners' (node/cosign).
//
// A frame is the length of its body as an unsigned varint
// (encoding/binary's Uvarint: seven bits a byte, low bits first, the top
// bit set on every byte but the last), then the body's bytes. A message
// is one byte (a request type or an answer status, which each protocol
// numbers for itself), then one frame. Each is written in one Write, so
// that a small message is one write to the stream.
//
// A reader bounds the frames it takes: a length above its limit is
// refused (TooLargeError) before any of the body is read or allocated.
// Below the limit, the body's buffer grows as its bytes arrive: at most
// 64 KiB is allocated before any does, then the buffer doubles as it
// fills, so a peer that announces a long frame and sends nothing more
// holds 64 KiB of the reader's memory, not the length it announced.
package frame
