package dcerpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptedServer accepts one connection on loopback and runs script on it.
// It returns the address; the test fails if script reports an error.
func scriptedServer(t *testing.T, script func(nc net.Conn) error) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		done <- script(nc)
	}()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("scripted server: %v", err)
		}
	})
	return ln.Addr().String()
}

// readAny reads one PDU framed by frag_length.
func readAny(nc net.Conn) ([]byte, error) {
	hdr := make([]byte, HeaderLen)
	if _, err := io.ReadFull(nc, hdr); err != nil {
		return nil, err
	}
	pdu := make([]byte, binary.LittleEndian.Uint16(hdr[8:]))
	copy(pdu, hdr)
	_, err := io.ReadFull(nc, pdu[HeaderLen:])
	return pdu, err
}

// answerBind answers the client's bind (and alter_context) with the real
// negotiation and returns the association.
func answerBind(nc net.Conn, alter bool) (*association, error) {
	a := &association{group: 7, secAddr: "1688"}
	for range map[bool]int{false: 1, true: 2}[alter] {
		pdu, err := readAny(nc)
		if err != nil {
			return nil, err
		}
		out, err := a.negotiate(nil, pdu)
		if err != nil {
			return nil, err
		}
		if _, err := nc.Write(out); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func TestDialRejectsBadBindAck(t *testing.T) {
	goodAck := func(nc net.Conn) ([]byte, error) {
		pdu, err := readAny(nc)
		if err != nil {
			return nil, err
		}
		a := association{group: 7, secAddr: "1688"}
		return a.negotiate(nil, pdu)
	}
	tests := []struct {
		name   string
		mutate func(ack []byte) []byte
		want   string
	}{
		{"wrong call_id", func(b []byte) []byte { b[12] = 9; return b }, "call_id"},
		{"bind_nak type", func(b []byte) []byte { b[2] = byte(ptypeBindNak); return b }, "expected bind_ack"},
		{"all rejected", func(b []byte) []byte {
			// The NDR32-only bind's single result: make it a rejection.
			b[len(b)-24] = resultProviderRejection
			return b
		}, "accepted no transfer syntax"},
		{"truncated results", func(b []byte) []byte {
			b = b[:len(b)-4]
			binary.LittleEndian.PutUint16(b[8:], uint16(len(b)))
			return b
		}, "truncated"},
		{"frag_length over the client limit", func(b []byte) []byte {
			binary.LittleEndian.PutUint16(b[8:], clientMaxPDU+1)
			return b
		}, "exceeds the limit"},
		{"rpc version 4", func(b []byte) []byte { b[0] = 4; return b }, "version"},
		{"fragmented bind_ack", func(b []byte) []byte { b[3] = FlagFirstFrag; return b }, "fragmented"},
		{"closed mid-PDU", func(b []byte) []byte { return b[:20] }, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptedServer(t, func(nc net.Conn) error {
				ack, err := goodAck(nc)
				if err != nil {
					return err
				}
				nc.Write(tt.mutate(ack))
				return nil
			})
			c, err := Dial(context.Background(), "tcp", addr, ClientConfig{DisableNDR64: true, DisableBTFN: true, Timeout: 2 * time.Second})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Errorf("Dial error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestCallRejectsBadResponse(t *testing.T) {
	good := func(h Header) []byte {
		return appendKMSResponse(nil, Header{Flags: 3, DataRep: DataRepLE, CallID: h.CallID}, 0, NDR32, []byte("ok"), 0)
	}
	tests := []struct {
		name   string
		answer func(req Header) []byte
		want   string
	}{
		{"wrong call_id", func(h Header) []byte { b := good(h); b[12]++; return b }, "call_id"},
		{"wrong context", func(h Header) []byte { b := good(h); b[20] = 1; return b }, "p_cont_id"},
		{"bind_ack instead", func(h Header) []byte { b := good(h); b[2] = byte(PTypeBindAck); return b }, "expected response"},
		{"fragmented", func(h Header) []byte { b := good(h); b[3] = FlagFirstFrag; return b }, "fragmented"},
		{"conformance mismatch", func(h Header) []byte { b := good(h); b[32] = 3; return b }, "conformance"},
		{"size beyond the PDU", func(h Header) []byte { b := good(h); b[24], b[32] = 200, 200; return b }, "exceeds"},
		{"no return value", func(h Header) []byte {
			b := good(h)
			b = b[:len(b)-4]
			binary.LittleEndian.PutUint16(b[8:], uint16(len(b)))
			return b
		}, "return value"},
		{"trailing garbage in stub", func(h Header) []byte {
			b := append(good(h), make([]byte, 8)...)
			binary.LittleEndian.PutUint16(b[8:], uint16(len(b)))
			return b
		}, "trailing"},
		{"truncated fault", func(h Header) []byte { return appendFault(nil, h, 0, 1)[:24] }, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptedServer(t, func(nc net.Conn) error {
				if _, err := answerBind(nc, false); err != nil {
					return err
				}
				req, err := readAny(nc)
				if err != nil {
					return err
				}
				h, _ := ParseHeader(req)
				out := tt.answer(h)
				binary.LittleEndian.PutUint16(out[8:], uint16(len(out)))
				_, err = nc.Write(out)
				return err
			})
			c, err := Dial(context.Background(), "tcp", addr, ClientConfig{DisableNDR64: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _, err = c.Call(context.Background(), []byte("hi"))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("Call error %v, want one mentioning %q", err, tt.want)
			}
			// The client is now unusable and says so without touching the wire.
			if _, _, err2 := c.Call(context.Background(), []byte("again")); err2 == nil {
				t.Error("second Call after a protocol error succeeded")
			}
		})
	}
}

func TestCallCancellation(t *testing.T) {
	release := make(chan struct{})
	addr := scriptedServer(t, func(nc net.Conn) error {
		if _, err := answerBind(nc, true); err != nil {
			return err
		}
		if _, err := readAny(nc); err != nil {
			return err
		}
		<-release // never answer
		return nil
	})
	defer close(release)
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	_, _, err = c.Call(ctx, []byte("x"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Call = %v, want context.Canceled", err)
	}
}

func TestDialTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := scriptedServer(t, func(nc net.Conn) error {
		<-release // accept, never answer the bind
		return nil
	})
	defer close(release)
	_, err := Dial(context.Background(), "tcp", addr, ClientConfig{Timeout: 50 * time.Millisecond})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Dial = %v, want a timeout", err)
	}
}

// TestProbeAgainstNonRPC checks that a listener that is not a KMS host
// (it answers garbage) fails the probe.
func TestProbeAgainstNonRPC(t *testing.T) {
	addr := scriptedServer(t, func(nc net.Conn) error {
		if _, err := readAny(nc); err != nil {
			return err
		}
		_, err := nc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		return err
	})
	if err := Probe(context.Background(), addr, time.Second); err == nil {
		t.Fatal("Probe succeeded against a non-RPC server")
	}
}

// A server answers each PDU with one PDU: a second one sent along with the
// answer makes the client unusable instead of being taken for the answer
// to its next call.
func TestCallRejectsSecondAnswer(t *testing.T) {
	addr := scriptedServer(t, func(nc net.Conn) error {
		if _, err := answerBind(nc, false); err != nil {
			return err
		}
		req, err := readAny(nc)
		if err != nil {
			return err
		}
		h, _ := ParseHeader(req)
		out := Header{Flags: 3, DataRep: DataRepLE, CallID: h.CallID}
		one := appendKMSResponse(nil, out, 0, NDR32, []byte("ok"), 0)
		out.CallID++
		_, err = nc.Write(appendKMSResponse(one, out, 0, NDR32, []byte("next"), 0))
		return err
	})
	c, err := Dial(context.Background(), "tcp", addr, ClientConfig{DisableNDR64: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.Call(context.Background(), []byte("hi")); err == nil || !strings.Contains(err.Error(), "bytes after") {
		t.Fatalf("Call error %v, want one about bytes after the answer", err)
	}
	if _, _, err := c.Call(context.Background(), []byte("again")); err == nil {
		t.Error("second Call after a protocol error succeeded")
	}
}
