// Sign in with email and password. The answer sets the session cookies; the tokens in its body are
// not kept (see api.js).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { link } from '../router.js';
import { useSession } from '../session.js';
import { BusyButton, ErrorBox, Field, PageHeading, useSubmit } from '../components/ui.jsx';

export function LoginPage({ email: initialEmail = '', registered = false }) {
  const { signedIn } = useSession();
  const [email, setEmail] = useState(initialEmail);
  const [password, setPassword] = useState('');

  const { busy, error, submit } = useSubmit(async () => {
    // auth: false, since a 401 here means a wrong password, not a session to refresh.
    const answer = await api.post('/auth/login', { email: email.trim(), password }, { auth: false });
    signedIn(answer.user);
  });

  return (
    <section class="auth-page">
      <PageHeading>Sign in</PageHeading>
      {registered && (
        <p class="notice" role="status" data-testid="registered-notice">
          Your registration was accepted. Sign in with your email and password.
        </p>
      )}
      <form class="form" onSubmit={submit} data-testid="login-form" aria-busy={busy ? 'true' : undefined} noValidate>
        <Field id="login-email" label="Email" error={error} path="/email">
          {(a) => (
            <input {...a} type="email" name="email" autocomplete="username" required value={email}
              onInput={(e) => setEmail(e.currentTarget.value)} data-testid="login-email" />
          )}
        </Field>
        <Field id="login-password" label="Password" error={error} path="/password">
          {(a) => (
            <input {...a} type="password" name="password" autocomplete="current-password" required value={password}
              onInput={(e) => setPassword(e.currentTarget.value)} data-testid="login-password" />
          )}
        </Field>
        <ErrorBox error={error} fields={['/email', '/password']} testid="login-error" />
        <BusyButton type="submit" busy={busy} class="button button-primary" data-testid="login-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </BusyButton>
      </form>
      <p>
        No account yet? <a href={link('signup')} data-testid="to-signup">Sign up</a>
      </p>
    </section>
  );
}
