package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
)

func TestBackup_CheckOn(t *testing.T) {
	tests := []struct {
		check, environment string
		want               bool
	}{
		{"auto", config.Production, true},
		{"auto", config.Staging, true},
		{"auto", config.Development, false}, // nobody runs the nightly job on a laptop
		{"on", config.Development, true},
		{"off", config.Production, false},
	}
	for _, tt := range tests {
		if got := (config.Backup{Check: tt.check}).CheckOn(tt.environment); got != tt.want {
			t.Errorf("check %q in %s: CheckOn = %v; want %v", tt.check, tt.environment, got, tt.want)
		}
	}
	if d := config.Default().Backup; !d.CheckOn(config.Production) || d.WarnAfter != 26*time.Hour || d.FailAfter != 50*time.Hour {
		t.Errorf("default backup section %+v; want the check on in production, warning at 26h, failing at 50h", d)
	}
	if w, f := (config.Backup{Mode: "continuous", WarnAfter: time.Hour, ContinuousWarnAfter: time.Minute, ContinuousFailAfter: 2 * time.Minute}).Thresholds(); w != time.Minute || f != 2*time.Minute {
		t.Errorf("continuous thresholds %s/%s; want the continuous ones, 1m/2m", w, f)
	}
}

// The check must warn before it fails; the rule applies only while the check
// runs, so a development machine is not held to thresholds nobody reads.
func TestLoad_BackupThresholds(t *testing.T) {
	base := []string{"DATABASE_URL", "postgres://db/x", "STATUS_TOKENS", "0123456789abcdef0123", "NEW_RELIC_LICENSE_KEY", testLicense}
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{"fail before warn in production", []string{"APP_BACKUP_WARN_AFTER", "30h", "APP_BACKUP_FAIL_AFTER", "24h"},
			"backup.fail_after (env APP_BACKUP_FAIL_AFTER): 24h0m0s is not longer than backup.warn_after (30h0m0s)"},
		{"equal thresholds", []string{"APP_BACKUP_FAIL_AFTER", "26h"}, "backup.fail_after (env APP_BACKUP_FAIL_AFTER): 26h0m0s is not longer"},
		{"switched off", []string{"APP_BACKUP_CHECK", "off", "APP_BACKUP_FAIL_AFTER", "1h"}, ""},
		{"development with auto", []string{"APP_ENVIRONMENT", "development", "APP_BACKUP_FAIL_AFTER", "1h"}, ""},
		{"development with on", []string{"APP_ENVIRONMENT", "development", "APP_BACKUP_CHECK", "on", "APP_BACKUP_FAIL_AFTER", "1h"}, "is not longer than backup.warn_after"},
		{"unknown mode", []string{"APP_BACKUP_CHECK", "sometimes"}, `"sometimes" is not allowed`},
		{"valid", []string{"APP_BACKUP_WARN_AFTER", "2h", "APP_BACKUP_FAIL_AFTER", "3h"}, ""},
		{"continuous, default minutes", []string{"APP_BACKUP_MODE", "continuous"}, ""},
		{"continuous, fail before warn", []string{"APP_BACKUP_MODE", "continuous", "APP_BACKUP_CONTINUOUS_FAIL_AFTER", "5m"},
			"backup.continuous_fail_after (env APP_BACKUP_CONTINUOUS_FAIL_AFTER): 5m0s is not longer than backup.continuous_warn_after (10m0s)"},
		{"continuous ignores the dump thresholds", []string{"APP_BACKUP_MODE", "continuous", "APP_BACKUP_FAIL_AFTER", "1h"}, ""},
		{"continuous on SQLite without Litestream's socket", []string{"APP_ENVIRONMENT", "development", "APP_BACKUP_CHECK", "on", "DATABASE_URL", "sqlite:///var/lib/notes.db", "APP_BACKUP_MODE", "continuous", "APP_BACKUP_LITESTREAM_SOCKET", " "},
			"backup.litestream_socket (env APP_BACKUP_LITESTREAM_SOCKET): continuous mode on SQLite asks Litestream"},
		{"unknown backup mode", []string{"APP_BACKUP_MODE", "sometimes"}, `"sometimes" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load("", env(append(append([]string(nil), base...), tt.env...)...), os.ReadFile)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Load error %v; want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
