package alert

import (
	"errors"
	"fmt"
	"strings"

	mail "github.com/wneessen/go-mail"

	"github.com/prodready/service/internal/config"
)

// newClient builds the go-mail client from the settings. go-mail's defaults
// (port 25, STARTTLS mandatory) are always overridden from config.
//
// Authentication happens only when a username is set. The mechanism is
// discovered from what the server offers, strongest first; on a connection
// without TLS only challenge-response mechanisms (SCRAM, CRAM-MD5) are
// allowed, so the password is never sent in clear text: a server offering
// only PLAIN or LOGIN without STARTTLS gets an error, not the password.
//
// Port 465 is SMTP over implicit TLS (RFC 8314): the connection starts with
// a TLS handshake instead of STARTTLS.
// ImplicitTLS reports whether the relay is dialled with TLS from the first
// byte (port 465, unless tls_policy is none), so a health check can dial it
// the same way.
func ImplicitTLS(cfg config.Email) bool {
	return cfg.SMTPPort == 465 && cfg.TLSPolicy != "none"
}

func newClient(cfg config.Email, extra []mail.Option) (*mail.Client, error) {
	policy, err := tlsPolicy(cfg.TLSPolicy)
	if err != nil {
		return nil, err
	}
	opts := []mail.Option{
		mail.WithPort(cfg.SMTPPort),
		mail.WithTLSPolicy(policy),
		mail.WithTimeout(cfg.Timeout),
	}
	if ImplicitTLS(cfg) {
		opts = append(opts, mail.WithSSL())
	}
	if cfg.Username != "" {
		opts = append(opts,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(cfg.Username),
			mail.WithPassword(cfg.Password))
	}
	return mail.NewClient(cfg.SMTPHost, append(opts, extra...)...)
}

// tlsPolicy maps email.tls_policy to go-mail's policy.
func tlsPolicy(s string) (mail.TLSPolicy, error) {
	switch s {
	case "mandatory", "":
		return mail.TLSMandatory, nil
	case "opportunistic":
		return mail.TLSOpportunistic, nil
	case "none":
		return mail.NoTLS, nil
	}
	return mail.NoTLS, fmt.Errorf("unknown tls_policy %q (want mandatory, opportunistic or none)", s)
}

// buildMsg turns a composed message into a go-mail message. Auto-Submitted
// (RFC 3834) keeps vacation responders and ticket systems from answering an
// alert; X-Alert-Fingerprint lets a mail filter group or silence one error.
func (r *Reporter) buildMsg(m message) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(r.cfg.From); err != nil {
		return nil, fmt.Errorf("email.from: %w", err)
	}
	if err := msg.To(r.cfg.Recipients...); err != nil {
		return nil, fmt.Errorf("email.recipients: %w", err)
	}
	msg.Subject(m.subject)
	msg.SetDateWithValue(r.now())
	msg.SetMessageID()
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Auto-Response-Suppress", "All")
	if m.fp != "" {
		msg.SetGenHeader("X-Alert-Fingerprint", m.fp)
	}
	msg.SetBodyString(mail.TypeTextPlain, m.body)
	return msg, nil
}

// maxErrorLen bounds an SMTP error kept for logs and the status route.
const maxErrorLen = 300

// sanitize makes an error safe to log and show: one line, the configured
// secrets scrubbed (a server may echo the username or more), control
// characters escaped, and bounded in length.
func (r *Reporter) sanitize(err error) string {
	s := newScrubber(r.secrets).Replace(err.Error())
	if errors.Is(err, mail.ErrNoSupportedAuthDiscovered) {
		s += " (without TLS only SCRAM or CRAM-MD5 are tried, never a clear-text password; use tls_policy mandatory)"
	}
	s = strings.Join(strings.Fields(s), " ") // newlines of multi-line SMTP replies
	return truncate(oneLine(s), maxErrorLen)
}
