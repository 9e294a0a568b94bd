// Create an account. The server answers 202 with the same body whether or not the address was new
// (no account enumeration), so the page never says "created": it sends the user to sign in.
import { useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { link, navigate } from '../router.js';
import { BusyButton, ErrorBox, Field, PageHeading, useSubmit } from '../components/ui.jsx';

export function SignupPage() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');

  const { busy, error, submit } = useSubmit(async () => {
    if (password !== confirm) {
      // Checked here because the API takes one password; shown like a server field error.
      throw new ApiError({ status: 400, title: 'The passwords differ', errors: [{ path: '/confirm', message: 'does not match the password' }] });
    }
    await api.post('/auth/register', { email: email.trim(), password }, { auth: false });
    navigate(`/login?registered=1&email=${encodeURIComponent(email.trim())}`);
  });

  return (
    <section class="auth-page">
      <PageHeading>Create an account</PageHeading>
      <form class="form" onSubmit={submit} data-testid="signup-form" aria-busy={busy ? 'true' : undefined} noValidate>
        <Field id="signup-email" label="Email" error={error} path="/email">
          {(a) => (
            <input {...a} type="email" name="email" autocomplete="email" required value={email}
              onInput={(e) => setEmail(e.currentTarget.value)} data-testid="signup-email" />
          )}
        </Field>
        <Field id="signup-password" label="Password" error={error} path="/password"
          hint="8 to 128 characters; common passwords are refused.">
          {(a) => (
            <input {...a} type="password" name="password" autocomplete="new-password" required minLength={8} maxLength={128}
              value={password} onInput={(e) => setPassword(e.currentTarget.value)} data-testid="signup-password" />
          )}
        </Field>
        <Field id="signup-confirm" label="Password again" error={error} path="/confirm">
          {(a) => (
            <input {...a} type="password" name="confirm" autocomplete="new-password" required value={confirm}
              onInput={(e) => setConfirm(e.currentTarget.value)} data-testid="signup-confirm" />
          )}
        </Field>
        <ErrorBox error={error} fields={['/email', '/password', '/confirm']} testid="signup-error" />
        <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="signup-submit">
          {busy ? 'Creating…' : 'Sign up'}
        </BusyButton>
      </form>
      <p>
        Have an account? <a href={link('login')}>Sign in</a>
      </p>
    </section>
  );
}
