// Package codec encrypts what cartflow hands Temporal: every payload (workflow and activity
// inputs and results, memos, signals, updates, schedule actions) and the message and stack trace
// of every failure, with AES-256-GCM under a key named by its id, so that workflow histories hold
// no email, name or payment token in clear. It also serves the codec endpoint the Temporal Web UI
// decodes payloads through.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const (
	// Encoding is the metadata encoding of an encrypted payload; only payloads marked with it are decrypted.
	Encoding = "binary/encrypted"
	// MetadataKeyID names the metadata entry holding the id of the key a payload is encrypted under.
	MetadataKeyID = "encryption-key-id"
	// KeySize is the length of an AES-256 key in bytes.
	KeySize = 32
)

// ErrUnknownKey is returned when a payload names a key id the keyring does not hold.
var ErrUnknownKey = errors.New("codec: unknown encryption key id")

// Codec is a converter.PayloadCodec encrypting with the active key and decrypting with any key
// of its keyring, so that keys rotate without breaking histories written under the old one.
type Codec struct {
	active string
	aeads  map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec over keyring (key id → 32-byte key) that encrypts new payloads under
// active. Errors name the key id, never the key.
func New(keyring map[string][]byte, active string) (*Codec, error) {
	if len(keyring) == 0 {
		return nil, errors.New("codec: the keyring is empty")
	}
	c := &Codec{active: active, aeads: make(map[string]cipher.AEAD, len(keyring))}
	for id, key := range keyring {
		if err := checkKeyID(id); err != nil {
			return nil, err
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("codec: key %q is %d bytes, AES-256 needs %d", id, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", id, err)
		}
		if c.aeads[id], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", id, err)
		}
	}
	if _, ok := c.aeads[active]; !ok {
		return nil, fmt.Errorf("codec: the active key id %q is not in the keyring (it holds %s)", active, strings.Join(c.KeyIDs(), ", "))
	}
	return c, nil
}

// ParseKeyring reads a keyring written as "kid:base64key,kid2:base64key" (standard or URL-safe
// base64, padded or not). Errors name the key id or the position, never key material.
func ParseKeyring(s string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("codec: keyring entry %d is not kid:base64-key", i+1)
		}
		id = strings.TrimSpace(id)
		if err := checkKeyID(id); err != nil {
			return nil, fmt.Errorf("codec: keyring entry %d: %w", i+1, err)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("codec: key id %q appears twice in the keyring", id)
		}
		key, err := decodeKey(strings.TrimSpace(b64))
		if err != nil {
			// The decoder's error quotes the offending byte and offset: not repeated, it is key material.
			return nil, fmt.Errorf("codec: key %q is not valid base64", id)
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("codec: key %q is %d bytes, AES-256 needs %d", id, len(key), KeySize)
		}
		out[id] = key
	}
	if len(out) == 0 {
		return nil, errors.New("codec: the keyring is empty")
	}
	return out, nil
}

// FromSettings parses keyring and builds the codec that encrypts under active.
func FromSettings(keyring, active string) (*Codec, error) {
	keys, err := ParseKeyring(keyring)
	if err != nil {
		return nil, err
	}
	return New(keys, active)
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// checkKeyID refuses ids that could not round-trip through "kid:key,kid:key".
func checkKeyID(id string) error {
	if id == "" {
		return errors.New("codec: a key id is empty")
	}
	if strings.ContainsAny(id, ":, \t\n") {
		return fmt.Errorf("codec: key id %q holds a separator", id)
	}
	return nil
}

// ActiveKeyID is the id of the key new payloads are encrypted under.
func (c *Codec) ActiveKeyID() string { return c.active }

// KeyIDs lists the ids of the keys the codec decrypts with, sorted.
func (c *Codec) KeyIDs() []string {
	ids := make([]string, 0, len(c.aeads))
	for id := range c.aeads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Encode encrypts each payload, metadata and data together, under the active key. The key id is
// also the additional data, so that a payload relabelled with another key id fails to decrypt.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.active]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(c.active),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(c.active)),
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec encrypted, under the key each names, and passes every
// other payload through unchanged: histories written before the codec still replay.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return payloads, fmt.Errorf("%w %q (this process knows %s)", ErrUnknownKey, id, strings.Join(c.KeyIDs(), ", "))
		}
		data := p.GetData()
		if len(data) < aead.NonceSize()+aead.Overhead() {
			return payloads, fmt.Errorf("codec: payload under key %q is too short to be encrypted", id)
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return payloads, fmt.Errorf("codec: payload under key %q does not decrypt (tampered, or another key under the same id): %w", id, err)
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(plain, out[i]); err != nil {
			return payloads, fmt.Errorf("codec: decrypted payload under key %q: %w", id, err)
		}
	}
	return out, nil
}

// DataConverter is Temporal's default data converter with every payload encrypted by c.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encodes failures with dc and moves their message and stack trace into the
// encoded attributes, so that an error naming a customer's email is not in clear either.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: dc, EncodeCommonAttributes: true,
	})
}
