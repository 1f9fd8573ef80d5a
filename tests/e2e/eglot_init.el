;;; eglot_init.el --- ckls driven by Emacs's own eglot, in batch  -*- lexical-binding: t -*-
;;
;; `emacs --batch -l eglot_init.el': load the docs/editors.md eglot snippet as an init file holds it, visit a Python
;; file (python-mode-hook -> eglot-ensure, which connects once the command that visited the file ends: batch has no
;; command loop, so post-command-hook is run by hand), wait for the model (ckls.stats), replace a line of a function
;; with a partial one (didChange), list the candidates of eglot's completion table there (what a completion UI
;; shows), then `completion-at-point' (C-M-i) inserts the sole candidate, then `eglot-shutdown'.  Input: the JSON
;; file named by $CKLS_EGLOT_CONFIG ({snippet, file, line, partial}).  Output: one line on stdout,
;; "CKLS-EGLOT-RESULT " and a JSON object (the server's stderr buffer among it); Emacs exits 0, or 1 on an error
;; (its message in the object).  The test is tests/e2e/test_emacs_eglot.py.

(require 'cl-lib)
(require 'json)
(require 'package)
(require 'subr-x)

(defvar ckls-cfg (json-read-file (getenv "CKLS_EGLOT_CONFIG")))
(defvar ckls-out nil)

(defun ckls-put (key value)
  (setq ckls-out (plist-put ckls-out key value)))

(defun ckls-wait (seconds pred what)
  (let ((deadline (+ (float-time) seconds)))
    (while (not (funcall pred))
      (when (> (float-time) deadline)
        (error "Timed out after %ss waiting for %s" seconds what))
      (accept-process-output nil 0.05))))

(defun ckls-stderr (server)
  (let ((buf (and server (jsonrpc-stderr-buffer server))))
    (when (buffer-live-p buf)
      (ckls-put :stderr_buffer (buffer-name buf))
      (ckls-put :stderr (with-current-buffer buf (buffer-substring-no-properties (point-min) (point-max)))))))

(defun ckls-run ()
  (ckls-put :emacs emacs-version)
  ;; an interactive Emacs activates the installed packages (Debian's elpa-eglot) before the init file; batch does not
  (unless (fboundp 'eglot-ensure)
    (package-activate-all))
  (load (alist-get 'snippet ckls-cfg) nil t)
  (find-file (alist-get 'file ckls-cfg))
  (ckls-put :mode (symbol-name major-mode))
  (run-hooks 'post-command-hook)
  (ckls-wait 60 (lambda () (and (bound-and-true-p eglot--managed-mode) (eglot-current-server)))
             "eglot to connect and manage the buffer")
  (let ((server (eglot-current-server)))
    (ckls-put :eglot (locate-library "eglot"))
    (ckls-put :server_name (jsonrpc-name server))
    (ckls-put :command (vconcat (process-command (jsonrpc--process server))))
    (ckls-put :capf (and (memq #'eglot-completion-at-point completion-at-point-functions) t))
    (unwind-protect
        (progn
          ;; the model loads in the background: ckls.stats says when
          (let (model)
            (ckls-wait 120 (lambda ()
                             (setq model (plist-get (jsonrpc-request server :workspace/executeCommand
                                                                     '(:command "ckls.stats"))
                                                    :model))
                             (not (member model '(nil "loading" "not loaded"))))
                       "the model")
            (ckls-put :model model))
          (goto-char (point-min))
          (forward-line (1- (alist-get 'line ckls-cfg)))
          (let ((bol (point)))
            (delete-region bol (line-end-position))
            (insert (alist-get 'partial ckls-cfg))
            (ckls-put :position (vector (1- (line-number-at-pos)) (current-column)))
            ;; what a completion UI (the *Completions* buffer, company, corfu) gets from eglot's table here
            (pcase-let* ((`(,beg ,end ,table . ,_) (eglot-completion-at-point))
                         (cands (all-completions (buffer-substring-no-properties beg end) table)))
              (ckls-put :candidates (vconcat (mapcar #'substring-no-properties cands)))
              (ckls-put :items (vconcat (mapcar (lambda (c) (get-text-property 0 'eglot--lsp-item c)) cands))))
            ;; C-M-i: the sole candidate is inserted, then eglot's exit function applies the item's textEdit
            (completion-at-point)
            (ckls-put :after (buffer-substring-no-properties bol (point)))))
      (ckls-stderr server)
      (let ((proc (jsonrpc--process server)))
        (eglot-shutdown server nil nil t)
        (ckls-put :server_live_after_shutdown (process-live-p proc))
        (ckls-put :server_status (format "%s %s" (process-status proc) (process-exit-status proc))))
      (ckls-stderr server))))

(let ((code 0))
  (condition-case err
      (ckls-run)
    (error (setq code 1)
           (ckls-put :error (error-message-string err))
           (let ((buf (cl-find-if (lambda (b) (string-match-p "\\`\\*EGLOT.*events\\*\\'" (buffer-name b)))
                                  (buffer-list))))
             (when buf
               (with-current-buffer buf
                 (ckls-put :events_tail (buffer-substring-no-properties (max (point-min) (- (point-max) 6000))
                                                                        (point-max))))))))
  (unless (plist-member ckls-out :error)
    (ckls-put :error nil))
  (princ (concat "CKLS-EGLOT-RESULT " (json-encode ckls-out) "\n"))
  (kill-emacs code))
