//! Splits a streamed HTTP body into newline-terminated JSON documents (an apiserver's watch
//! encoding), tolerating documents split across chunks.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// Yields complete lines (without the newline); a trailing unterminated line is yielded at EOF.
pub fn lines<S, E>(body: S) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    futures::stream::unfold(
        (body, BytesMut::new(), false),
        |(mut body, mut buf, mut done)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(pos + 1).freeze().slice(..pos);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some((Ok(line), (body, buf, done)));
                }
                if done {
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let rest = buf.split().freeze();
                    return Some((Ok(rest), (body, buf, done)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        done = true;
                        buf.clear();
                        return Some((Err(e), (body, buf, done)));
                    }
                    None => done = true,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_across_chunks() {
        let chunks: Vec<Result<Bytes, ()>> = vec![
            Ok(Bytes::from_static(b"{\"a\":1}\n{\"b\"")),
            Ok(Bytes::from_static(b":2}\n\n{\"c\":3}")),
        ];
        let out: Vec<_> = lines(futures::stream::iter(chunks)).collect().await;
        let out: Vec<&[u8]> = out.iter().map(|r| r.as_ref().unwrap().as_ref()).collect();
        assert_eq!(out, vec![&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]);
    }
}
