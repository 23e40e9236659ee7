package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/isol8/isol8/agent"
)

// fileOpTimeout bounds an agent file operation whose caller set no
// deadline: no file transfer may hold the engine (or a persistent sandbox's
// lock) forever.
const fileOpTimeout = 60 * time.Second

// fileOpContext gives ctx a deadline when it has none.
func fileOpContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, fileOpTimeout)
}

// statFile asks the agent for the size of a regular file without reading it.
func (c *agentConn) statFile(ctx context.Context, path string) (int64, error) {
	ctx, cancel := fileOpContext(ctx)
	defer cancel()
	id, ch := c.open()
	defer c.release(id)
	if err := c.w.WriteJSON(agent.TypeGetFile, id, agent.GetFile{Path: path, Stat: true}); err != nil {
		return 0, fmt.Errorf("%w: %v", errAgentGone, err)
	}
	f, err := c.next(ctx, ch)
	if err != nil {
		return 0, err
	}
	switch f.Type {
	case agent.TypeOK:
		var ok agent.OK
		if err := f.Decode(&ok); err != nil {
			return 0, err
		}
		return ok.Size, nil
	case agent.TypeError:
		return 0, agentError(f)
	}
	return 0, fmt.Errorf("%w: unexpected %s frame", errAgentGone, f.Type)
}

// getFileBase64 reads a regular file of the size statFile reported and
// encodes it while it arrives, into a buffer of exactly the encoded size: the
// engine never holds the raw bytes and a base64 copy of them at once. The
// agent refuses the file if it grew past size meanwhile.
func (c *agentConn) getFileBase64(ctx context.Context, path string, size int64) (string, error) {
	ctx, cancel := fileOpContext(ctx)
	defer cancel()
	id, ch := c.open()
	defer c.release(id)
	// MaxBytes 0 would mean "no limit": an empty file must stay empty.
	if err := c.w.WriteJSON(agent.TypeGetFile, id, agent.GetFile{Path: path, MaxBytes: max(size, 1)}); err != nil {
		return "", fmt.Errorf("%w: %v", errAgentGone, err)
	}
	var out strings.Builder
	out.Grow(base64.StdEncoding.EncodedLen(int(size)))
	var carry []byte // at most 2 bytes not yet encoded
	var got int64
	enc := make([]byte, 4*(agent.MaxPayload/3+1))
	for {
		f, err := c.next(ctx, ch)
		if err != nil {
			return "", err
		}
		switch f.Type {
		case agent.TypeFileData:
			got += int64(len(f.Payload))
			if got > size {
				return "", fmt.Errorf("Failed to read file %s: it grew past %d bytes while read: %w", path, size, errdefs.ErrInvalidArgument)
			}
			data := f.Payload
			if len(carry) > 0 {
				need := min(3-len(carry), len(data))
				carry = append(carry, data[:need]...)
				data = data[need:]
				if len(carry) == 3 {
					base64.StdEncoding.Encode(enc, carry)
					out.Write(enc[:4])
					carry = carry[:0]
				}
			}
			whole := len(data) / 3 * 3
			base64.StdEncoding.Encode(enc, data[:whole])
			out.Write(enc[:base64.StdEncoding.EncodedLen(whole)])
			carry = append(carry, data[whole:]...)
		case agent.TypeFileEOF:
			if len(carry) > 0 {
				base64.StdEncoding.Encode(enc, carry)
				out.Write(enc[:base64.StdEncoding.EncodedLen(len(carry))])
			}
			return out.String(), nil
		case agent.TypeError:
			return "", agentError(f)
		default:
			return "", fmt.Errorf("%w: unexpected %s frame", errAgentGone, f.Type)
		}
	}
}

// readOutputs reads back a run's outputPaths. Every size is asked first and
// a total above maxOutputFilesBytes refuses the request before any byte is
// transferred. Missing and non-regular files (FIFOs, sockets, devices,
// symlinks, directories) are omitted, as unreadable files always were.
func (e *Engine) readOutputs(ctx context.Context, sb *sandbox, paths []string) (map[string]string, error) {
	sizes := make([]int64, len(paths))
	var total int64
	for i, p := range paths {
		n, err := sb.conn.statFile(ctx, p)
		if err != nil {
			if !omittable(err) {
				return nil, fmt.Errorf("read output %s: %w", p, err)
			}
			e.log.Debug("output path omitted", "sandbox", sb.id, "path", p, "error", err)
			sizes[i] = -1
			continue
		}
		sizes[i] = n
		total += n
		if total > e.opts.MaxOutputFilesBytes {
			return nil, invalidf("outputPaths: the files total more than %d bytes, the limit (maxOutputFilesBytes)", e.opts.MaxOutputFilesBytes)
		}
	}
	files := map[string]string{}
	for i, p := range paths {
		if sizes[i] < 0 {
			continue
		}
		data, err := sb.conn.getFileBase64(ctx, p, sizes[i])
		if err != nil {
			if !omittable(err) {
				return nil, fmt.Errorf("read output %s: %w", p, err)
			}
			e.log.Debug("output path omitted", "sandbox", sb.id, "path", p, "error", err)
			continue
		}
		files[p] = data
	}
	return files, nil
}

// omittable tells a file the agent refused (missing, not regular, changed)
// from a broken sandbox or an expired deadline.
func omittable(err error) bool {
	return errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) ||
		!(errors.Is(err, errAgentGone) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled))
}
