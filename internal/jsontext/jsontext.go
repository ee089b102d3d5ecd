// Package jsontext finds the strings of a JSON document that are not text PostgreSQL can store:
// invalid UTF-8, a NUL character (\u0000) or a lone UTF-16 surrogate escape. encoding/json
// silently turns invalid UTF-8 and lone surrogates into U+FFFD and decodes \u0000 into a NUL,
// which a text column refuses, so a document must be checked on its raw bytes, before decoding.
package jsontext

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is how deeply arrays and objects may nest. No request or provider event cartflow
// reads nests half as deep; the bound keeps the walk's memory small for a hostile document.
const MaxDepth = 32

// Error says where the first string that is not text sits.
type Error struct {
	// Path names the string's place the way the API names fields: items[0].sku, payment.token;
	// "" for the document itself, or for a member name at its top.
	Path string
	// TooDeep is set when the document nests deeper than MaxDepth; Path is where it does.
	TooDeep bool
}

func (e *Error) Error() string {
	where := e.Path
	if where == "" {
		where = "the document"
	}
	if e.TooDeep {
		return "json nests deeper than " + strconv.Itoa(MaxDepth) + " levels at " + where
	}
	return "json string at " + where + " is not UTF-8 text without NUL characters"
}

// frame is one array or object being walked: the index of its current element, or the name of
// its current member and whether a member name comes next.
type frame struct {
	array   bool
	index   int
	key     string
	wantKey bool
}

// Check walks doc and returns an *Error for the first member name or string value that is not
// text, or for nesting deeper than MaxDepth. A document that is not JSON is none of its
// business: it returns nil at the first syntax error, and the decoder proper reports it.
func Check(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber() // numbers are skipped: no need to parse them
	var stack []frame
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		end := dec.InputOffset()
		raw := doc[prev:end]
		prev = end
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if len(stack) == MaxDepth {
					return &Error{Path: path(stack), TooDeep: true}
				}
				stack = append(stack, frame{array: tok == '[', wantKey: tok == '{'})
			default:
				stack = stack[:len(stack)-1]
				advance(stack)
			}
		case string:
			// The token's raw bytes start after the separators and white space before it.
			literal := raw[bytes.IndexByte(raw, '"'):]
			if top := len(stack) - 1; top >= 0 && !stack[top].array && stack[top].wantKey {
				if !isText(literal) {
					return &Error{Path: path(stack[:top])}
				}
				stack[top].key, stack[top].wantKey = tok, false
				continue
			}
			if !isText(literal) {
				return &Error{Path: path(stack)}
			}
			advance(stack)
		default:
			advance(stack)
		}
	}
}

// advance moves the innermost container past the value just read.
func advance(stack []frame) {
	if len(stack) == 0 {
		return
	}
	top := &stack[len(stack)-1]
	if top.array {
		top.index++
	} else {
		top.wantKey = true
	}
}

// path names the current value: member names joined by dots, array indexes in brackets.
func path(stack []frame) string {
	var b strings.Builder
	for _, f := range stack {
		if f.array {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	return b.String()
}

// isText reports whether a JSON string literal, quotes included and already known to be
// well-formed, is valid UTF-8 and escapes neither NUL nor a lone surrogate.
func isText(literal []byte) bool {
	if !utf8.Valid(literal) {
		return false
	}
	// pendingHigh: the previous escape was a high surrogate, which must be followed by a low one.
	pendingHigh := false
	for i := 1; i < len(literal)-1; i++ {
		if literal[i] != '\\' {
			if pendingHigh {
				return false
			}
			continue
		}
		i++
		if literal[i] != 'u' {
			if pendingHigh {
				return false
			}
			continue
		}
		r, err := strconv.ParseUint(string(literal[i+1:i+5]), 16, 16)
		if err != nil {
			return false
		}
		i += 4
		switch c := rune(r); {
		case c == 0:
			return false
		case utf16.IsSurrogate(c) && c < 0xdc00: // high surrogate
			if pendingHigh {
				return false
			}
			pendingHigh = true
		case utf16.IsSurrogate(c): // low surrogate
			if !pendingHigh {
				return false
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return false
			}
		}
	}
	return !pendingHigh
}
