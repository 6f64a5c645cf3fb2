// Golden data for weedpy's ports of Go standard-library behaviour (sniffing, MIME table, media
// types, strconv errors, JSON strings, URL parsing, multipart reading).
//
// Regenerate with the Go the weed binary is built with (go version -m $(which weed)):
//   cd tests/native_http/golden && GOTOOLCHAIN=go1.27.1 go run gen.go > golden.json
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

type sniffCase struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

type kv struct {
	In  string `json:"in"`
	Out string `json:"out"`
	Err string `json:"err,omitempty"`
}

type mediaCase struct {
	In     string            `json:"in"`
	Type   string            `json:"type"`
	Params map[string]string `json:"params"`
	Err    string            `json:"err,omitempty"`
}

type fmtCase struct {
	Type     string `json:"type"`
	Filename string `json:"filename"`
	Out      string `json:"out"`
}

type urlCase struct {
	In       string `json:"in"`
	Path     string `json:"path"`
	Escaped  string `json:"escaped"`
	RawQuery string `json:"raw_query"`
	Err      string `json:"err,omitempty"`
}

type queryCase struct {
	In      string              `json:"in"`
	Values  map[string][]string `json:"values"`
	Err     string              `json:"err,omitempty"`
	Encoded string              `json:"encoded"`
}

type partOut struct {
	Header   map[string][]string `json:"header"`
	FileName string              `json:"filename"`
	Data     string              `json:"data"`
	Err      string              `json:"err,omitempty"`
}

type mpCase struct {
	Body     string    `json:"body"`
	Boundary string    `json:"boundary"`
	Parts    []partOut `json:"parts"`
	Err      string    `json:"err,omitempty"`
}

func h(s string) string { return hex.EncodeToString([]byte(s)) }

// gzipInputs: deterministic inputs covering stored, Huffman-only, dynamic and multi-block paths.
func gzipInputs() [][]byte {
	var ins [][]byte
	ins = append(ins, []byte(""), []byte("x"), []byte(strings.Repeat("a", 16)), []byte(strings.Repeat("a", 17)),
		[]byte(strings.Repeat("hello weedpy\n", 40)), []byte(strings.Repeat("The quick brown fox. ", 4000)))
	x := uint32(12345)
	next := func() byte { x = x*1103515245 + 12345; return byte(x >> 16) }
	rnd := make([]byte, 70000)
	for i := range rnd {
		rnd[i] = next()
	}
	ins = append(ins, rnd)
	four := make([]byte, 90000)
	for i := range four {
		four[i] = "abcd"[next()%4]
	}
	ins = append(ins, four)
	words := make([]byte, 0, 150000)
	vocab := []string{"volume", "needle", "seaweed", "cookie", "offset", "index", "replica", "master", "chunk", "ttl"}
	for len(words) < 150000 {
		words = append(words, vocab[next()%10]...)
		words = append(words, " \n,."[next()%4])
	}
	ins = append(ins, words)
	return ins
}

func main() {
	out := map[string]interface{}{}

	sniffIn := []string{
		"", "hello", "  <html>x", "<HTML>", "<html", "<!DOCTYPE HTML>", "<?xml version", "  <?xml",
		"%PDF-1.4", "%!PS-Adobe-3.0", "\xfe\xff\x00\x00", "\xff\xfe\x00\x00", "\xef\xbb\xbf\x00", "\xef\xbb\xbf",
		"\x00\x00\x01\x00", "BM", "GIF89a..", "GIF87a", "RIFF\x00\x00\x00\x00WEBPVP8 ", "\x89PNG\r\n\x1a\nxxxx",
		"\xff\xd8\xff\xe0", "FORM\x00\x00\x00\x00AIFF", "ID3\x03", "OggS\x00", "MThd\x00\x00\x00\x06",
		"RIFF\x00\x00\x00\x00AVI ", "RIFF\x00\x00\x00\x00WAVE", "\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp41isom",
		"\x1a\x45\xdf\xa3", "\x00\x01\x00\x00", "OTTO", "ttcf", "wOFF", "wOF2", "\x1f\x8b\x08", "PK\x03\x04",
		"Rar!\x1a\x07\x00", "Rar!\x1a\x07\x01\x00", "\x00asm", "binary\x00data", "text\x1bwith esc",
		"\t\n <p>para", "<p", "<br/>", "<!-- c -->", "<script>", " <a href", "<B>", "<bodyx",
		"{\"json\": 1}", "\x01\x02", "\x0c\x0c\x0c", strings.Repeat("a", 600) + "\x00",
		strings.Repeat("\x00", 34) + "LP", "\x7fELF", "abc\x7f",
	}
	var sc []sniffCase
	for _, s := range sniffIn {
		sc = append(sc, sniffCase{h(s), http.DetectContentType([]byte(s))})
	}
	out["sniff"] = sc

	exts := []string{".txt", ".TXT", ".Txt", ".html", ".png", ".PNG", ".jpg", ".jpeg", ".gif", ".webp",
		".json", ".js", ".css", ".xml", ".pdf", ".zip", ".gz", ".tar", ".mp4", ".mp3", ".wav", ".svg",
		".c", ".C", ".cpp", ".go", ".py", ".md", ".csv", ".doc", ".bin", ".exe", ".foo", "", ".",
		".tar.gz", ".xyzzy", ".yaml", ".yml", ".ico", ".bmp", ".tif", ".woff", ".woff2", ".ttf", ".otf",
		".wasm", ".avif", ".heic", ".mkv", ".webm", ".ogg", ".flac", ".rtf", ".sh", ".rs", ".java",
		".h", ".hpp", ".php", ".rb", ".pl", ".sql", ".log", ".ini", ".conf", ".toml", ".bench", ".dat",
		".idx", ".iso", ".dmg", ".apk", ".deb", ".rpm", ".7z", ".rar", ".bz2", ".xz", ".zst", ".br"}
	var mc []kv
	for _, e := range exts {
		mc = append(mc, kv{In: e, Out: mime.TypeByExtension(e)})
	}
	out["mime"] = mc

	mediaIn := []string{"text/plain", "text/plain; charset=utf-8", "TEXT/Plain ; Charset=UTF-8",
		"multipart/form-data; boundary=abc", "multipart/form-data; boundary=\"a b\"", "multipart/form-data",
		"form-data; name=\"file\"; filename=\"a.txt\"", "attachment; filename=x.png", "inline",
		"attachment; filename*=utf-8''%E2%82%AC%20rates", "attachment; filename*0=\"a\"; filename*1=\"b\"",
		"a/b/c", ";", "", "foo", "foo/", "foo/bar; x", "foo/bar; x=", "foo/bar; x=1; x=2", "foo/bar; x=1; x=1",
		"foo/bar;", "foo/bar; ;", "foo/bar; a=\"unterminated", "attachment; name=\"n\"", "attachment; filename=\"a\\\\b\"",
		"attachment; filename=\"C:\\\\dir\\\\f.txt\"", "form-data; name=file; filename=\"../../etc/passwd\""}
	var md []mediaCase
	for _, s := range mediaIn {
		t, p, err := mime.ParseMediaType(s)
		c := mediaCase{In: s, Type: t, Params: p}
		if err != nil {
			c.Err = err.Error()
		}
		md = append(md, c)
	}
	out["media"] = md

	var fc []fmtCase
	for _, t := range []string{"inline", "attachment"} {
		for _, f := range []string{"report.txt", "7,01e240a1b2c3d4", "a b.txt", "é.txt", "x\"y", "a\\b", "tab\there", "semi;colon", "€", "\x01ctl"} {
			fc = append(fc, fmtCase{t, f, mime.FormatMediaType(t, map[string]string{"filename": f})})
		}
	}
	out["format"] = fc

	var nc []kv
	for _, s := range []string{"", "abc", "123", "99999999999999999999", "18446744073709551615", "18446744073709551616", "-1", "+1", "1_0", "0x10", "é", "a\"b", "\x00", "\xff", "tab\t"} {
		_, err := strconv.ParseUint(s, 10, 64)
		e := ""
		if err != nil {
			e = err.Error()
		}
		_, err2 := strconv.Atoi(s)
		e2 := ""
		if err2 != nil {
			e2 = err2.Error()
		}
		nc = append(nc, kv{In: h(s), Out: e2, Err: e})
	}
	out["strconv"] = nc

	var jc []kv
	for _, s := range []string{"plain", "a<b>&c", "quote\"back\\", "ctl\x01\x1f\n\r\t\b\f", "é€", "\xff\xfe", "\xe2\x82", "\u2028\u2029", "\xed\xa0\x80", "\x7f"} {
		b, _ := json.Marshal(s)
		jc = append(jc, kv{In: h(s), Out: string(b)})
	}
	out["json"] = jc

	var qc []kv
	for _, s := range []string{"abc", "a\"b", "é", "\xff", "\x00\x07\x7f", "\u00a0", "tab\t"} {
		qc = append(qc, kv{In: h(s), Out: h(strconv.Quote(s))})
	}
	out["quote"] = qc

	var uc []urlCase
	for _, s := range []string{"/3,01637037d6", "/3/01637037d6/a%20b.txt", "/a%zz", "/a%2", "/a+b", "/%41bc", "/a b", "/x?y=1&z", "/x?",
		"http://h:1/p/q?a=1", "*", "x", "/é", "/a%2Fb", "/p;q", "/p?a=%zz"} {
		u, err := url.ParseRequestURI(s)
		c := urlCase{In: s}
		if err != nil {
			c.Err = err.Error()
		} else {
			c.Path, c.Escaped, c.RawQuery = u.Path, u.EscapedPath(), u.RawQuery
		}
		uc = append(uc, c)
	}
	out["url"] = uc

	var qq []queryCase
	for _, s := range []string{"a=1&b=2&a=3", "a=1;b=2", "a=%zz&b=1", "=x&y", "dl=true&readDeleted=true", "k=a+b%20c", "&&a=1&", "b=2&a=1&a=0"} {
		v, err := url.ParseQuery(s)
		c := queryCase{In: s, Values: v, Encoded: v.Encode()}
		if err != nil {
			c.Err = err.Error()
		}
		qq = append(qq, c)
	}
	out["query"] = qq

	mpIn := []struct{ body, boundary string }{
		{"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B--\r\n", "B"},
		{"preamble\r\n--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv1\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dir/b.bin\"\r\n\r\n\x00\x01\r\n--B--", "B"},
		{"--B\nContent-Disposition: form-data; name=\"file\"; filename=\"n.txt\"\n\nunix\n--B--\n", "B"},
		{"--B\r\n\r\nno headers\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nunterminated", "B"},
		{"garbage only", "B"},
		{"", "B"},
		{"--B\r\nBad Header Line\r\n\r\nx\r\n--B--\r\n", "B"},
		{"--B\r\n Leading: space\r\n\r\nx\r\n--B--\r\n", "B"},
		{"--B\r\nX-A: 1\r\n  continued\r\nContent-Disposition: form-data; filename=\"c.txt\"\r\n\r\ndata\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--B\r\njunk\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; filename=\"C:\\\\path\\\\win.txt\"\r\n\r\nw\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; filename=\"q.txt\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.txt\"\r\n\r\n\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nx\r\n--Bx\r\ny\r\n--B--\r\n", "B"},
		{strings.Repeat("p", 5000) + "\r\n--B\r\n\r\nx\r\n--B--\r\n", "B"},
		{"--B\r\nX: " + strings.Repeat("v", 5000) + "\r\n\r\nlong header\r\n--B--\r\n", "B"},
		{"--\r\n\r\nx", ""},
		{"--B \t\r\nContent-Disposition: form-data; filename=\"sp.txt\"\r\n\r\nlwsp\r\n--B--\r\n", "B"},
		{"--B\r\nContent-Disposition: form-data; filename=\"h.txt\"\r\nX: a\x01b\r\n\r\nctl\r\n--B--\r\n", "B"},
	}
	var mps []mpCase
	for _, c := range mpIn {
		mr := multipart.NewReader(strings.NewReader(c.body), c.boundary)
		r := mpCase{Body: h(c.body), Boundary: c.boundary}
		for i := 0; i < 4; i++ {
			p, err := mr.NextPart()
			if err != nil {
				r.Err = err.Error()
				break
			}
			var buf bytes.Buffer
			_, rerr := buf.ReadFrom(io.LimitReader(p, 1<<20))
			po := partOut{Header: p.Header, FileName: p.FileName(), Data: h(buf.String())}
			if rerr != nil {
				po.Err = rerr.Error()
			}
			r.Parts = append(r.Parts, po)
		}
		mps = append(mps, r)
	}
	out["multipart"] = mps

	var gz []kv
	for _, in := range gzipInputs() {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		w.Write(in)
		w.Close()
		gz = append(gz, kv{In: h(string(in)), Out: hex.EncodeToString(b.Bytes())})
	}
	out["gzip"] = gz

	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	enc.Encode(out)
}
