package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustNew(t *testing.T, keys map[string][]byte, active string) *Codec {
	t.Helper()
	c, err := New(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// secret is what a checkout input holds; it must never appear in an encoded payload.
const secret = `{"email":"ada@example.com","name":"Ada Lovelace","token":"pm_card_visa"}`

func plainPayload(t *testing.T) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"email": "ada@example.com", "name": "Ada Lovelace", "token": "pm_card_visa"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := mustNew(t, map[string][]byte{"a": key(1)}, "a")
	in := plainPayload(t)
	enc, err := c.Encode([]*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(enc[0])
	for _, s := range []string{"ada@example.com", "Ada Lovelace", "pm_card_visa", "json/plain"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("encoded payload holds %q in clear", s)
		}
	}
	if got := string(enc[0].Metadata[converter.MetadataEncoding]); got != Encoding {
		t.Errorf("encoding = %q, want %q", got, Encoding)
	}
	if got := string(enc[0].Metadata[MetadataKeyID]); got != "a" {
		t.Errorf("key id = %q, want a", got)
	}
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dec[0], in) {
		t.Errorf("decoded %v, want %v", dec[0], in)
	}
	// Two encodings of one payload differ: a fresh nonce each time.
	again, _ := c.Encode([]*commonpb.Payload{in})
	if bytes.Equal(again[0].Data, enc[0].Data) {
		t.Error("two encodings of the same payload are identical: nonce reused")
	}
}

func TestDataConverterRoundTrip(t *testing.T) {
	t.Parallel()
	dc := DataConverter(mustNew(t, map[string][]byte{"a": key(1)}, "a"))
	p, err := dc.ToPayload(secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte("ada@example.com")) {
		t.Fatal("the data converter left the email in clear")
	}
	var got string
	if err := dc.FromPayload(p, &got); err != nil || got != secret {
		t.Fatalf("FromPayload = %q, %v", got, err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	ring := map[string][]byte{"a": key(1), "b": key(2)}
	old := mustNew(t, ring, "a")
	encA, err := old.Encode([]*commonpb.Payload{plainPayload(t)})
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustNew(t, ring, "b")
	if _, err := rotated.Decode(encA); err != nil {
		t.Fatalf("a payload under the previous key no longer decodes: %v", err)
	}
	encB, _ := rotated.Encode([]*commonpb.Payload{plainPayload(t)})
	if got := string(encB[0].Metadata[MetadataKeyID]); got != "b" {
		t.Errorf("new payload under key %q, want b", got)
	}
	// A process that has dropped key a names the id it does not know.
	onlyB := mustNew(t, map[string][]byte{"b": key(2)}, "b")
	_, err = onlyB.Decode(encA)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("decode under a dropped key: %v, want ErrUnknownKey naming a", err)
	}
}

func TestDecodeRefusesTampering(t *testing.T) {
	t.Parallel()
	ring := map[string][]byte{"a": key(1), "b": key(2)}
	c := mustNew(t, ring, "a")
	enc, _ := c.Encode([]*commonpb.Payload{plainPayload(t)})
	cases := map[string]func(p *commonpb.Payload){
		"flipped ciphertext bit": func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"flipped nonce bit":      func(p *commonpb.Payload) { p.Data[0] ^= 1 },
		"truncated":              func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"relabelled key id":      func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("b") },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := proto.Clone(enc[0]).(*commonpb.Payload)
			tamper(p)
			if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
				t.Fatal("a tampered payload decoded")
			}
		})
	}
}

func TestDecodePassesPlaintextThrough(t *testing.T) {
	t.Parallel()
	c := mustNew(t, map[string][]byte{"a": key(1)}, "a")
	plain := plainPayload(t)
	zlibbed := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/zlib")}, Data: []byte{1, 2}}
	out, err := c.Decode([]*commonpb.Payload{plain, zlibbed})
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != plain || out[1] != zlibbed {
		t.Error("payloads without the encrypted encoding were changed")
	}
}

func TestFailureConverterHidesMessage(t *testing.T) {
	t.Parallel()
	fc := FailureConverter(DataConverter(mustNew(t, map[string][]byte{"a": key(1)}, "a")))
	f := fc.ErrorToFailure(temporal.NewNonRetryableApplicationError("no user ada@example.com", "InvalidCustomer", nil))
	raw, _ := proto.Marshal(f)
	if bytes.Contains(raw, []byte("ada@example.com")) {
		t.Fatal("the failure holds the email in clear")
	}
	err := fc.FailureToError(f)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !strings.Contains(appErr.Error(), "ada@example.com") || appErr.Type() != "InvalidCustomer" {
		t.Fatalf("decoded failure = %v", err)
	}
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()
	k1 := base64.StdEncoding.EncodeToString(key(1))
	k2 := base64.RawURLEncoding.EncodeToString(key(2))
	got, err := ParseKeyring(" old:" + k1 + " , new:" + k2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got["old"], key(1)) || !bytes.Equal(got["new"], key(2)) || len(got) != 2 {
		t.Fatalf("keyring = %v", got)
	}
	short := base64.StdEncoding.EncodeToString(key(3)[:16])
	for name, in := range map[string]string{
		"empty":        "",
		"no separator": k1,
		"empty id":     ":" + k1,
		"bad base64":   "a:" + k1[:10] + "!!!" + k1[13:],
		"short key":    "a:" + short,
		"duplicate id": "a:" + k1 + ",a:" + k1,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseKeyring(in)
			if err == nil {
				t.Fatal("accepted")
			}
			// The error may name the key id; never any of the key material.
			for _, material := range []string{k1[:8], k1[13:21], short[:8]} {
				if strings.Contains(err.Error(), material) {
					t.Errorf("error %q shows key material", err)
				}
			}
		})
	}
}

func TestNewRefusesActiveKeyMissing(t *testing.T) {
	t.Parallel()
	_, err := FromSettings("a:"+base64.StdEncoding.EncodeToString(key(1)), "b")
	if err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("err = %v, want one naming the missing active id", err)
	}
	if _, err := New(map[string][]byte{"a": key(1)[:31]}, "a"); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
}
