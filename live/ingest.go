package live

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/pacman-cdn/pacman/live/cmaf"
	"go.uber.org/zap"
)

const (
	// maxPlaylistSize bounds an encoder's playlist.
	maxPlaylistSize = 1 << 20
	// keptUploads bounds the segments uploaded and not yet listed by
	// the encoder, per stream.
	keptUploads = 64
	// maxEventSegments bounds the segments an event's recording holds.
	maxEventSegments = 1 << 17
	// syncTimeout is how long a publisher starting a stream asks its
	// peers where the stream stands, so that a restarted publisher
	// continues its sequence.
	syncTimeout = 3 * time.Second
	// ingestTimeout bounds the work of one ingest request.
	ingestTimeout = time.Minute
	// endWait bounds how long a final playlist (#EXT-X-ENDLIST) waits
	// for the segments it lists that have not arrived: an encoder PUTs
	// its last segment and its final playlist at the same moment.
	endWait = 15 * time.Second
)

// Token lets an encoder publish: to every stream, or only to Streams.
type Token struct {
	Secret  string
	Streams []string
}

// ErrNoSpace is what an Importer's error wraps when the store's disk is
// full: the encoder is answered 507.
var ErrNoSpace = errors.New("no room left to store the segment")

// Importer stores a file and returns its UnixFS CID.
type Importer func(ctx context.Context, r io.Reader) (cid.Cid, error)

// Directory stores a UnixFS directory of the named DAGs.
type Directory func(ctx context.Context, entries map[string]cid.Cid) (cid.Cid, error)

// Piece is a part already stored: its CID and its size in bytes.
type Piece struct {
	CID  cid.Cid
	Size uint64
}

// Joiner stores the file made of pieces, in order, whose blocks are the
// pieces' own, durably, and returns its CID.
type Joiner func(ctx context.Context, pieces []Piece) (cid.Cid, error)

// Ingest takes a live HLS stream from an encoder over HTTP PUT, as
// ffmpeg's HLS muxer sends it with -method PUT: segments, then the
// playlist naming them, under {prefix}/{stream}/. Each segment the
// playlist lists anew is announced with the next sequence number; at
// #EXT-X-ENDLIST, or on DELETE of the playlist, the event becomes one
// directory (its playlist and every segment) and its end is announced.
//
// A low-latency stream comes as ffmpeg's DASH muxer sends it with
// -ldash 1 -frag_duration D -method PUT: an init segment
// (init-stream0.m4s), then CMAF segments (chunk-stream0-N.m4s) uploaded
// as they are coded. Each fragment of a segment is announced as a part
// (LL-HLS) as soon as it has arrived, and the segment once its upload
// ends, with no playlist to wait for.
type Ingest struct {
	Relay  *Relay
	Import Importer
	// ImportPart stores a part: it need not be durable, as the segment
	// made of it (Join) is.
	ImportPart Importer
	Join       Joiner
	// PartTarget is a low-latency stream's part target: no part may
	// last longer. Zero refuses low-latency streams.
	PartTarget time.Duration
	Directory  Directory
	// Discard, if set, gives back the storage of an upload that is
	// dropped without being announced: replaced, pushed out of the
	// uploads kept, or left over at the end.
	Discard        func(ctx context.Context, c cid.Cid)
	Tokens         []Token
	MaxSegmentSize int64
	Log            *zap.Logger

	mu   sync.Mutex // guards pubs
	pubs map[string]*publication
}

// publication is one stream as its encoder sends it.
type publication struct {
	mu      sync.Mutex
	synced  bool
	uploads map[string]upload // segments uploaded, not yet listed
	order   []string          // uploads' names, oldest first
	lastEnc int64             // the encoder's last sequence announced; -1 before
	nextSeq uint64
	discont bool // the next segment follows a restart
	resumed bool // the stream was announced before this publication began
	ended   bool
	arrived chan struct{} // closed, and replaced, when a segment is uploaded

	// A low-latency stream's: its track, init segment, the encoder's
	// last segment number taken, and how many segments are being cut.
	track     *cmaf.Track
	initSeg   cid.Cid
	lastChunk int64
	cutting   int
}

// upload is one segment imported and not yet listed.
type upload struct {
	cid cid.Cid
	at  time.Time // when its upload completed
}

// ServeHTTP implements http.Handler.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dir, file := path.Split(path.Clean(r.URL.Path))
	if strings.HasSuffix(r.URL.Path, "/") {
		dir, file = path.Clean(r.URL.Path)+"/", ""
	}
	stream := path.Base(dir)
	if !Publishable(stream) {
		http.Error(w, "stream names are 1 to 64 of A-Z, a-z, 0-9, _ and -", http.StatusBadRequest)
		return
	}
	if status, msg := in.authorize(r, stream); status != 0 {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="pacman live ingest"`)
		}
		http.Error(w, msg, status)
		return
	}
	// ffmpeg half-closes its connection once a body is sent, and Go's
	// server takes that for the client leaving: what a request has
	// started is finished, within ingestTimeout, whatever the encoder's
	// socket does. A body cut short still fails as it is read.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ingestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	ext := path.Ext(file)
	switch {
	case r.Method == http.MethodPut || r.Method == http.MethodPost:
	case r.Method == http.MethodDelete && (file == "" || ext == ".m3u8"):
		in.end(w, r, stream)
		return
	case r.Method == http.MethodDelete:
		// Encoders delete segments that left their window; the event
		// keeps them.
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "PUT, POST, DELETE")
		http.Error(w, "the ingest route takes PUT, POST and DELETE", http.StatusMethodNotAllowed)
		return
	}
	if m := dashName.FindStringSubmatch(file); m != nil {
		in.lowLatency(w, r, stream, file, m)
		return
	}
	switch ext {
	case ".m3u8":
		if m := dashPlaylist.FindStringSubmatch(file); m != nil {
			// The DASH muxer's playlist of one rendition (with
			// -hls_playlist 1): its #EXT-X-ENDLIST ends it.
			k, _ := strconv.Atoi(m[1])
			stream = RenditionName(stream, k)
		}
		in.playlist(w, r, stream)
	case ".ts", ".m4s":
		in.segment(w, r, stream, file)
	case ".mpd":
		// The DASH muxer's manifest: edges write their own playlists.
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, fmt.Sprintf("%q: only .m3u8 playlists and .ts or .m4s segments are taken", file), http.StatusUnsupportedMediaType)
	}
}

// dashName matches the files of ffmpeg's DASH muxer: the init segment and
// the media segments of a representation (-init_seg_name and
// -media_seg_name at their defaults).
var dashName = regexp.MustCompile(`^(?:init-stream([0-9]{1,3})\.m4s|chunk-stream([0-9]{1,3})-([0-9]{1,15})\.m4s)$`)

// dashPlaylist matches the media playlists ffmpeg's DASH muxer writes of
// its representations with -hls_playlist 1.
var dashPlaylist = regexp.MustCompile(`^media_([0-7])\.m3u8$`)

// maxInitSize bounds an init segment.
const maxInitSize = 1 << 20

// lowLatency takes a file of ffmpeg's DASH muxer, matched by dashName:
// an init segment, or a media segment cut into parts as it arrives.
func (in *Ingest) lowLatency(w http.ResponseWriter, r *http.Request, stream, file string, m []string) {
	if in.PartTarget <= 0 {
		http.Error(w, "this ingest takes no low-latency streams: set its part_target", http.StatusBadRequest)
		return
	}
	// Each representation of the encoder's ladder is a rendition,
	// relayed as a stream of its own.
	k, _ := strconv.Atoi(m[1] + m[2])
	if k >= MaxRenditions {
		http.Error(w, fmt.Sprintf("%q: a stream has at most %d renditions (stream0 to stream%d)", file, MaxRenditions, MaxRenditions-1), http.StatusBadRequest)
		return
	}
	stream = RenditionName(stream, k)
	if m[3] == "" {
		in.initSegment(w, r, stream)
		return
	}
	n, _ := strconv.ParseInt(m[3], 10, 64)
	in.cut(w, r, stream, file, n)
}

// initSegment takes a low-latency stream's init segment.
func (in *Ingest) initSegment(w http.ResponseWriter, r *http.Request, stream string) {
	data, ok := readBody(w, r, maxInitSize, "an init segment")
	if !ok {
		return
	}
	tr, err := cmaf.ParseInit(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if tr.Handler != "vide" {
		// A ladder's renditions are video variants; an audio track
		// would need an audio rendition group, which edges do not
		// write yet.
		http.Error(w, fmt.Sprintf("the init segment's track is %q, not video: a low-latency stream carries video only for now (ffmpeg -map 0:v)", tr.Handler), http.StatusUnsupportedMediaType)
		return
	}
	c, err := in.Import(r.Context(), bytes.NewReader(data))
	if err != nil {
		in.importFailed(w, stream, "init segment", err)
		return
	}
	p, ok := in.live(w, r, stream)
	if !ok {
		return
	}
	defer p.mu.Unlock()
	if p.initSeg.Defined() && p.initSeg != c {
		// A new init segment: the encoder restarted, or changed its
		// encoding.
		p.discont = true
	}
	p.track, p.initSeg = &tr, c
	w.WriteHeader(http.StatusCreated)
}

// cut takes media segment n of a low-latency stream as it is uploaded,
// announcing each fragment as a part once it has arrived, and the segment
// when the upload ends.
func (in *Ingest) cut(w http.ResponseWriter, r *http.Request, stream, file string, n int64) {
	p, ok := in.live(w, r, stream)
	if !ok {
		return
	}
	if p.track == nil {
		p.mu.Unlock()
		_, k := Rendition(stream)
		http.Error(w, fmt.Sprintf("%q before its init segment: PUT init-stream%d.m4s first", file, k), http.StatusConflict)
		return
	}
	if n <= p.lastChunk {
		last := p.lastChunk
		p.mu.Unlock()
		http.Error(w, fmt.Sprintf("%q is out of order: segment %d was taken already", file, last), http.StatusConflict)
		return
	}
	seq, disc, tr, initSeg := p.nextSeq, p.discont, *p.track, p.initSeg
	p.lastChunk, p.nextSeq, p.discont = n, p.nextSeq+1, false
	p.cutting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.cutting--
		close(p.arrived)
		p.arrived = make(chan struct{})
		p.mu.Unlock()
	}()
	target := in.PartTarget.Seconds()
	frags := cmaf.NewReader(r.Body, tr, in.MaxSegmentSize, in.MaxSegmentSize)
	var pieces []Piece
	var total float64
	var start time.Time
	for i := 0; ; i++ {
		f, err := frags.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		switch {
		case errors.Is(err, cmaf.ErrTooBig):
			http.Error(w, fmt.Sprintf("a segment may have at most %d bytes", in.MaxSegmentSize), http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, fmt.Sprintf("%q, part %d: %v", file, i, err), http.StatusBadRequest)
			return
		case i == maxParts:
			http.Error(w, fmt.Sprintf("%q has more than %d parts", file, maxParts), http.StatusBadRequest)
			return
		case f.Duration > target+partSlack:
			http.Error(w, fmt.Sprintf("%q, part %d lasts %.3f s, more than the part target %.3f s: the encoder's fragments (ffmpeg -frag_duration) must not be longer", file, i, f.Duration, target), http.StatusBadRequest)
			return
		}
		if i == 0 {
			// A fragment is sent once coded: its first frame is as
			// old as it is long.
			start = time.Now().Add(-time.Duration(f.Duration * float64(time.Second))).Truncate(time.Millisecond)
		}
		c, err := in.ImportPart(r.Context(), bytes.NewReader(f.Data))
		if err != nil {
			in.importFailed(w, stream, "part", err)
			return
		}
		a := Announcement{Stream: stream, Seq: seq, IsPart: true, Part: i, CID: c, Duration: f.Duration, Ext: ".m4s",
			Independent: f.Independent, PartTarget: target, Map: initSeg, Discontinuity: disc && i == 0}
		if err := in.Relay.Publish(r.Context(), a); err != nil {
			in.Log.Error("announcing a live part", zap.String("stream", stream), zap.Error(err))
			http.Error(w, "announcing the part failed", http.StatusInternalServerError)
			return
		}
		pieces = append(pieces, Piece{CID: c, Size: uint64(len(f.Data))})
		total += f.Duration
	}
	if len(pieces) == 0 {
		http.Error(w, fmt.Sprintf("%q holds no fragment", file), http.StatusBadRequest)
		return
	}
	var size uint64
	for _, p := range pieces {
		size += p.Size
	}
	c, err := in.Join(r.Context(), pieces)
	if err != nil {
		in.importFailed(w, stream, "segment", err)
		return
	}
	a := Announcement{Stream: stream, Seq: seq, CID: c, Duration: total, Ext: ".m4s", PartTarget: target, Map: initSeg,
		Discontinuity: disc, ProgramDateTime: start, Size: size, Codecs: tr.Codec, Width: tr.Width, Height: tr.Height}
	if err := in.Relay.Publish(r.Context(), a); err != nil {
		in.Log.Error("announcing a live segment", zap.String("stream", stream), zap.Error(err))
		http.Error(w, "announcing the segment failed", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// partSlack is how much longer than the part target a part may be: the
// rounding of its duration to the track's timescale.
const partSlack = 0.0005

// importFailed answers an upload whose import failed: 507 when the disk
// is full.
func (in *Ingest) importFailed(w http.ResponseWriter, stream, what string, err error) {
	if errors.Is(err, ErrNoSpace) {
		http.Error(w, err.Error(), http.StatusInsufficientStorage)
		return
	}
	in.Log.Warn("importing a live "+what, zap.String("stream", stream), zap.Error(err))
	http.Error(w, "importing the "+what+" failed", http.StatusInternalServerError)
}

// authorize returns 0 when r's bearer token may publish stream, or the
// status and message of a refusal.
func (in *Ingest) authorize(r *http.Request, stream string) (int, string) {
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || secret == "" {
		return http.StatusUnauthorized, "publishing needs Authorization: Bearer <token>"
	}
	for _, t := range in.Tokens {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(t.Secret)) == 1 {
			if len(t.Streams) == 0 || slices.Contains(t.Streams, stream) {
				return 0, ""
			}
			return http.StatusForbidden, fmt.Sprintf("this token may not publish stream %q", stream)
		}
	}
	return http.StatusUnauthorized, "unknown token"
}

func (in *Ingest) publication(ctx context.Context, stream string) *publication {
	in.mu.Lock()
	if in.pubs == nil {
		in.pubs = map[string]*publication{}
	}
	p := in.pubs[stream]
	if p == nil {
		p = &publication{uploads: map[string]upload{}, lastEnc: -1, lastChunk: -1, arrived: make(chan struct{})}
		in.pubs[stream] = p
	}
	in.mu.Unlock()
	p.mu.Lock()
	if !p.synced {
		// A restarted publisher learns the stream's last sequence
		// number from its peers and goes on after it.
		sctx, cancel := context.WithTimeout(ctx, syncTimeout)
		in.Relay.Sync(sctx, stream)
		cancel()
		if last, ok := in.Relay.Streams().Last(stream); ok {
			p.nextSeq, p.discont, p.resumed = last+1, true, true
		}
		_, p.ended = in.Relay.Streams().End(stream)
		p.synced = true
	}
	return p // locked
}

// live returns stream's publication, locked, or answers 409 when the
// stream has ended.
func (in *Ingest) live(w http.ResponseWriter, r *http.Request, stream string) (*publication, bool) {
	p := in.publication(r.Context(), stream)
	if p.ended {
		p.mu.Unlock()
		http.Error(w, fmt.Sprintf("stream %q has ended: publish a new event under another name", stream), http.StatusConflict)
		return nil, false
	}
	return p, true
}

// segment imports one uploaded segment.
func (in *Ingest) segment(w http.ResponseWriter, r *http.Request, stream, file string) {
	// An ended stream takes nothing: refused before a byte is stored.
	p, ok := in.live(w, r, stream)
	if !ok {
		return
	}
	p.mu.Unlock()
	body := http.MaxBytesReader(w, r.Body, in.MaxSegmentSize)
	c, err := in.Import(r.Context(), body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, fmt.Sprintf("a segment may have at most %d bytes", in.MaxSegmentSize), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		in.importFailed(w, stream, "segment "+file, err)
		return
	}
	p, ok = in.live(w, r, stream)
	if !ok {
		return
	}
	defer p.mu.Unlock()
	if old, ok := p.uploads[file]; !ok {
		p.order = append(p.order, file)
	} else if old.cid != c {
		in.discard(r.Context(), old.cid)
	}
	p.uploads[file] = upload{cid: c, at: time.Now()}
	for len(p.order) > keptUploads {
		if up, ok := p.uploads[p.order[0]]; ok {
			in.discard(r.Context(), up.cid)
			delete(p.uploads, p.order[0])
		}
		p.order = p.order[1:]
	}
	close(p.arrived)
	p.arrived = make(chan struct{})
	w.WriteHeader(http.StatusCreated)
}

// readBody reads r's body, what of at most limit bytes, or answers 413 or
// 400 and reports false.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, fmt.Sprintf("%s may have at most %d bytes", what, limit), http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		http.Error(w, fmt.Sprintf("reading %s: %v", what, err), http.StatusBadRequest)
		return nil, false
	}
	return data, true
}

// playlist announces the segments an encoder's playlist lists anew.
func (in *Ingest) playlist(w http.ResponseWriter, r *http.Request, stream string) {
	data, ok := readBody(w, r, maxPlaylistSize, "a playlist")
	if !ok {
		return
	}
	if bytes.Contains(data, []byte("#EXT-X-STREAM-INF")) {
		// A multivariant playlist (the DASH muxer's master.m3u8):
		// edges write their own, from the renditions announced.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	pl, err := parseEncoderPlaylist(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, ok := in.live(w, r, stream)
	if !ok {
		return
	}
	if p.track != nil {
		// A low-latency stream's segments were announced as they
		// arrived: its playlist says only whether the event has
		// ended, and then every rendition has. ffmpeg's DASH muxer
		// codes them all, and was seen to exit before its last
		// rendition's final playlist was sent.
		p.mu.Unlock()
		if pl.ended {
			in.end(w, r, stream)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	defer p.mu.Unlock()
	if n := len(pl.entries); n > 0 && int64(pl.entries[n-1].seq) < p.lastEnc {
		// The encoder's sequence went back: it restarted.
		p.lastEnc, p.discont = int64(pl.entries[0].seq)-1, true
	}
	missing, err := in.announce(r.Context(), stream, p, pl)
	if err != nil {
		in.Log.Error("announcing a live segment", zap.String("stream", stream), zap.Error(err))
		http.Error(w, "announcing the segment failed", http.StatusInternalServerError)
		return
	}
	if !pl.ended {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The final playlist: the event ends once every segment it lists
	// is in, or endWait has passed.
	deadline := time.NewTimer(endWait)
	defer deadline.Stop()
	for waited := false; missing != "" && !p.ended; {
		if waited {
			in.Log.Warn("ending a live stream without segments its final playlist lists", zap.String("stream", stream),
				zap.String("missing", missing), zap.Duration("waited", endWait))
			break
		}
		waited = !p.awaitUpload(r.Context(), deadline.C)
		if p.ended {
			break
		}
		if missing, err = in.announce(r.Context(), stream, p, pl); err != nil {
			in.Log.Error("announcing a live segment", zap.String("stream", stream), zap.Error(err))
			http.Error(w, "announcing the segment failed", http.StatusInternalServerError)
			return
		}
	}
	if !p.ended && !in.finish(w, r, stream, p) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// awaitUpload waits, with p.mu released, until an upload ends, and
// reports false if deadline fired or ctx ended first. The caller holds
// p.mu, and holds it again on return.
func (p *publication) awaitUpload(ctx context.Context, deadline <-chan time.Time) bool {
	arrived := p.arrived
	p.mu.Unlock()
	defer p.mu.Lock()
	select {
	case <-arrived:
		return true
	case <-deadline:
	case <-ctx.Done():
	}
	return false
}

// discard gives back the storage of an upload dropped unannounced.
func (in *Ingest) discard(ctx context.Context, c cid.Cid) {
	if in.Discard != nil {
		in.Discard(ctx, c)
	}
}

// announce announces, in order, the segments pl lists anew that have been
// uploaded. It stops at the first one not uploaded yet and returns its
// name, or "" when none is missing. The caller holds p.mu.
func (in *Ingest) announce(ctx context.Context, stream string, p *publication, pl encoderPlaylist) (missing string, err error) {
	for _, e := range pl.entries {
		if int64(e.seq) <= p.lastEnc {
			continue
		}
		name := path.Base(e.uri)
		up, ok := p.uploads[name]
		if !ok && p.resumed && p.lastEnc < 0 {
			// Listed before this publisher restarted or reloaded:
			// uploaded to it then, announced or lost, never again.
			continue
		}
		if !ok {
			return name, nil // not uploaded yet: a later playlist lists it again
		}
		pdt := e.pdt
		if pdt.IsZero() {
			// An encoder that stamps no time (ffmpeg without
			// program_date_time) sends each segment as it ends.
			pdt = up.at.Add(-time.Duration(e.duration * float64(time.Second))).Truncate(time.Millisecond)
		}
		a := Announcement{
			Stream: stream, Seq: p.nextSeq, CID: up.cid, Duration: e.duration, Ext: path.Ext(name),
			Discontinuity: p.discont || e.discontinuity, ProgramDateTime: pdt,
		}
		if err := in.Relay.Publish(ctx, a); err != nil {
			return "", err
		}
		delete(p.uploads, name)
		p.lastEnc, p.discont = int64(e.seq), false
		p.nextSeq++
	}
	return "", nil
}

// end ends stream (on DELETE, or a low-latency stream's final playlist),
// each rendition of its ladder, once the segments being cut are in, or
// endWait has passed.
func (in *Ingest) end(w http.ResponseWriter, r *http.Request, stream string) {
	base, _ := Rendition(stream)
	deadline := time.NewTimer(endWait)
	defer deadline.Stop()
	for k := range MaxRenditions {
		name := RenditionName(base, k)
		if k > 0 && !in.publishing(name) {
			continue
		}
		p := in.publication(r.Context(), name)
		for waited := false; p.cutting > 0 && !p.ended && !waited; {
			waited = !p.awaitUpload(r.Context(), deadline.C)
		}
		ok := p.ended || in.finish(w, r, name, p)
		p.mu.Unlock()
		if !ok {
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// publishing reports whether stream has been published, by this
// publisher or, before it restarted, any.
func (in *Ingest) publishing(stream string) bool {
	in.mu.Lock()
	p := in.pubs[stream]
	in.mu.Unlock()
	return p != nil || in.Relay.Streams().Known(stream)
}

// finish ends stream, or answers 500 and reports false. The caller holds
// p.mu.
func (in *Ingest) finish(w http.ResponseWriter, r *http.Request, stream string, p *publication) bool {
	if err := in.record(r.Context(), stream, p); err != nil {
		in.Log.Error("ending a live stream", zap.String("stream", stream), zap.Error(err))
		http.Error(w, "ending the stream failed", http.StatusInternalServerError)
		return false
	}
	return true
}

// record stores the event as one directory, of every segment the
// publisher announced of it (across restarts and reloads), and announces
// its end. The caller holds p.mu.
func (in *Ingest) record(ctx context.Context, stream string, p *publication) error {
	segments, err := in.Relay.Recorded(stream)
	if err != nil {
		return fmt.Errorf("reading the event's segments: %w", err)
	}
	if len(segments) == 0 {
		return fmt.Errorf("stream %q has no segment to keep", stream)
	}
	playlist, _ := render(segments, kindVOD, nil, false)
	pc, err := in.Import(ctx, strings.NewReader(string(playlist)))
	if err != nil {
		return fmt.Errorf("storing the event's playlist: %w", err)
	}
	entries := map[string]cid.Cid{"index.m3u8": pc}
	for _, a := range segments {
		entries[SegmentName(a)] = a.CID
		if a.Map.Defined() {
			entries[MapName(a.Map)] = a.Map
		}
	}
	vod, err := in.Directory(ctx, entries)
	if err != nil {
		return err
	}
	last := segments[len(segments)-1]
	if err := in.Relay.Publish(ctx, Announcement{Stream: stream, Seq: last.Seq, End: true, VOD: vod}); err != nil {
		return err
	}
	p.ended = true
	for name, up := range p.uploads { // uploaded, never listed
		in.discard(ctx, up.cid)
		delete(p.uploads, name)
	}
	in.Log.Info("live stream ended", zap.String("stream", stream), zap.Int("segments", len(segments)), zap.Stringer("vod", vod))
	return nil
}
