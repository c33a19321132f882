package gateway

import (
	"mime"
	"path"
	"strings"
)

// mediaTypes pins the types of the formats players fetch from a media
// gateway. mime.TypeByExtension reads the host's mime.types, which differ
// between machines (some map .webm to audio/webm, most lack .m3u8); a
// player that gets the wrong type may refuse to play.
var mediaTypes = map[string]string{
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".m4s":  "video/iso.segment",
	".m4a":  "audio/mp4",
	".webm": "video/webm",
	".mkv":  "video/x-matroska",
	".mov":  "video/quicktime",
	".ts":   "video/mp2t",
	".m3u8": "application/vnd.apple.mpegurl",
	".mpd":  "application/dash+xml",
	".mp3":  "audio/mpeg",
	".aac":  "audio/aac",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".ogv":  "video/ogg",
	".opus": "audio/ogg",
	".flac": "audio/flac",
	".wav":  "audio/wav",
	".vtt":  "text/vtt; charset=utf-8",
	".srt":  "application/x-subrip",
}

// typeByName returns the media type for a file name's extension, or "".
func typeByName(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" {
		return ""
	}
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	return mime.TypeByExtension(ext)
}

// sandboxPolicy is the Content-Security-Policy of documents that can run
// scripts: they run, in an opaque origin (no allow-same-origin).
const sandboxPolicy = "sandbox allow-scripts allow-forms allow-popups allow-downloads allow-modals"

// scriptable reports media types a browser renders as a document that can
// run scripts.
func scriptable(ctype string) bool {
	mt, _, _ := strings.Cut(ctype, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml":
		return true
	}
	return false
}
